//! Execution: the TOCTOU re-check, one claim, the executor, the outcome and what is learnt;
//! and the worker that expires, closes interrupted executions and runs what waits.

use chrono::{DateTime, Utc};
use engine::dryrun::{DryRunReport, recheck};
use engine::policy::{ActionRequest, ApprovalStatus};
use entity::execution::ExecutionStatus;
use entity::{approval, approval_signature, execution, incident};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, Set,
};
use serde_json::json;

use super::{ApprovalError, ApprovalView, Approvals, ExecError, request_of, survivor_of};
use crate::base::incident::IncidentStatus;
use crate::services::notify::{self, EventKind};

impl Approvals {
    pub(super) fn spawn_execution(&self, id: i32) {
        let this = self.clone();
        tokio::spawn(async move {
            match this.execute(id).await {
                Ok(_) | Err(ApprovalError::Conflict(_)) => {}
                Err(error) => tracing::error!(approval = id, %error, "execution failed"),
            }
        });
    }

    /// Runs an APPROVED approval once: the dry-run again (TOCTOU), then either VOIDED (both
    /// reports kept, never run) or claimed as EXECUTING and carried out. Any number of
    /// callers on any number of replicas may race here; one claim wins.
    pub async fn execute(&self, id: i32) -> Result<ApprovalView, ApprovalError> {
        let view = self.load(id).await?;
        if view.row.status != ApprovalStatus::Approved {
            return Err(ApprovalError::Conflict(format!(
                "approval {id} is {}; only an APPROVED approval runs",
                view.row.status.as_str()
            )));
        }
        let request = request_of(&view.row);
        let real = self.real_request(view.row.incident_id, &request).await?;
        let (claim, seen) = self.claim(&view, &request, &real).await?;
        if claim == Claim::Voided {
            return self.load(id).await;
        }
        // The only place real values leave: the executor gets them, its output is labelled
        // again before anything stores or logs it. The write is conditional on what the
        // re-check saw, where the backend can make it so.
        let lease = self.renew_lease(id);
        let outcome = match self.0.executors.route(&real.kind) {
            Some(executor) => executor.execute(i64::from(id), &real, &seen).await,
            None => Err(ExecError::Refused(format!(
                "no executor handles the action kind `{}`",
                real.kind
            ))),
        };
        drop(lease);
        drop(real);
        if let Err(ExecError::Moved(reason)) = outcome {
            self.void_at_apply(&view, &reason).await?;
            return self.load(id).await;
        }
        let outbox = self.record_outcome(&view, &request, outcome).await?;
        crate::base::crash::point("execution.committed");
        if let Some(outbox) = outbox {
            self.0.knowledge.deliver(outbox).await;
        }
        self.load(id).await
    }

    /// The re-check and the claim, in one transaction: VOIDED with both reports and the
    /// reason, or EXECUTING with its execution row. Another executor's claim is a conflict.
    async fn claim(
        &self,
        view: &ApprovalView,
        request: &ActionRequest,
        real: &ActionRequest,
    ) -> Result<(Claim, DryRunReport), ApprovalError> {
        let (id, incident_id) = (view.row.id, view.row.incident_id);
        let (raw_report, seen) = self.raw_dry_run_seen(real).await;
        let verdict = recheck(&view.dry_run(), &raw_report);
        let next = match verdict {
            Ok(()) => ApprovalStatus::Executing,
            Err(_) => ApprovalStatus::Voided,
        };
        let now = Utc::now();
        let txn = crate::base::db::begin_write(&self.0.db).await?;
        let (now_report, verdict) = self
            .pseudonymise_in(&txn, incident_id, |b, shield| {
                let verdict = verdict.map_err(|reason| b.pseudonymise(shield, &reason.to_string()));
                (b.pseudonymise_report(shield, raw_report), verdict)
            })
            .await?;
        let claimed = approval::Entity::update_many()
            .col_expr(approval::Column::Status, Expr::value(next))
            .col_expr(
                approval::Column::Version,
                Expr::col(approval::Column::Version).add(1),
            )
            .col_expr(
                approval::Column::Recheck,
                Expr::value(serde_json::to_string(&now_report).expect("report serialises")),
            )
            .col_expr(
                approval::Column::VoidReason,
                Expr::value(verdict.as_ref().err().cloned()),
            )
            .col_expr(approval::Column::UpdatedAt, Expr::value(now))
            .filter(approval::Column::Id.eq(id))
            .filter(approval::Column::Status.eq(ApprovalStatus::Approved))
            .exec(&txn)
            .await?
            .rows_affected;
        if claimed == 0 {
            txn.rollback().await?;
            return Err(ApprovalError::Conflict(format!(
                "approval {id} was taken by another executor"
            )));
        }
        let claim = match &verdict {
            Err(reason) => {
                self.notice_in(&txn, EventKind::ApprovalVoided, id, "system")
                    .await?;
                let details = json!({
                    "reason": reason,
                    "approved_fingerprint": view.dry_run().state_fingerprint,
                    "current_fingerprint": now_report.state_fingerprint,
                });
                audit_approval(&txn, "approval.voided", id, details).await?;
                tracing::warn!(approval = id, %reason, "approval voided before execution");
                Claim::Voided
            }
            Ok(()) => {
                let executor = self.executor_name(&request.kind);
                execution::ActiveModel {
                    approval_id: Set(id),
                    executor: Set(executor.to_owned()),
                    status: Set(ExecutionStatus::Running),
                    output: Set(String::new()),
                    started_at: Set(now),
                    finished_at: Set(None),
                    lease_until: Set(Some(now + self.0.config.execution_lease)),
                    ..Default::default()
                }
                .insert(&txn)
                .await?;
                let action = format!("{} {}", request.kind, request.target);
                let details = json!({"executor": executor, "action": action});
                audit_approval(&txn, "approval.executing", id, details).await?;
                Claim::Running
            }
        };
        txn.commit().await?;
        self.notify(id);
        Ok((claim, seen))
    }

    /// The write was refused because the target changed after the re-check (a conditional
    /// write's conflict): nothing ran. The approval ends VOIDED with the reason, its execution
    /// FAILED with the same words; audited and told like a void at the re-check.
    async fn void_at_apply(&self, view: &ApprovalView, reason: &str) -> Result<(), ApprovalError> {
        let id = view.row.id;
        let now = Utc::now();
        let txn = crate::base::db::begin_write(&self.0.db).await?;
        let reason = self
            .pseudonymise_in(&txn, view.row.incident_id, |b, shield| {
                b.pseudonymise(shield, reason)
            })
            .await?;
        approval::Entity::update_many()
            .col_expr(
                approval::Column::Status,
                Expr::value(ApprovalStatus::Voided),
            )
            .col_expr(
                approval::Column::Version,
                Expr::col(approval::Column::Version).add(1),
            )
            .col_expr(
                approval::Column::VoidReason,
                Expr::value(Some(reason.clone())),
            )
            .col_expr(approval::Column::UpdatedAt, Expr::value(now))
            .filter(approval::Column::Id.eq(id))
            .filter(approval::Column::Status.eq(ApprovalStatus::Executing))
            .exec(&txn)
            .await?;
        execution::Entity::update_many()
            .col_expr(
                execution::Column::Status,
                Expr::value(ExecutionStatus::Failed),
            )
            .col_expr(
                execution::Column::Output,
                Expr::value(format!("not run: {reason}")),
            )
            .col_expr(execution::Column::FinishedAt, Expr::value(now))
            .filter(execution::Column::ApprovalId.eq(id))
            .exec(&txn)
            .await?;
        self.notice_in(&txn, EventKind::ApprovalVoided, id, "system")
            .await?;
        audit_approval(
            &txn,
            "approval.voided",
            id,
            json!({"reason": reason, "at": "apply"}),
        )
        .await?;
        txn.commit().await?;
        tracing::warn!(approval = id, %reason, "approval voided at the apply");
        self.notify(id);
        Ok(())
    }

    /// Renews execution `id`'s lease every third of it until the guard is dropped, so a long
    /// run is never taken for an interrupted one while this process lives.
    fn renew_lease(&self, id: i32) -> LeaseGuard {
        let this = self.clone();
        let lease = self.0.config.execution_lease;
        let every = (lease / 3)
            .to_std()
            .unwrap_or(std::time::Duration::from_secs(1));
        LeaseGuard(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let renewed = execution::Entity::update_many()
                    .col_expr(
                        execution::Column::LeaseUntil,
                        Expr::value(Some(Utc::now() + lease)),
                    )
                    .filter(execution::Column::ApprovalId.eq(id))
                    .filter(execution::Column::Status.eq(ExecutionStatus::Running))
                    .exec(&this.0.db)
                    .await;
                if let Err(error) = renewed {
                    tracing::warn!(approval = id, %error, "execution lease not renewed; retrying");
                }
            }
        }))
    }

    /// What the executor did, in one transaction: the approval EXECUTED or FAILED, the
    /// execution's labelled output, the incident's move, notifications, the audit event and
    /// the execution's knowledge entry (in the outbox). Returns the outbox row to deliver.
    async fn record_outcome(
        &self,
        view: &ApprovalView,
        request: &ActionRequest,
        outcome: Result<String, ExecError>,
    ) -> Result<Option<i32>, ApprovalError> {
        let id = view.row.id;
        let (succeeded, raw_output) = match outcome {
            Ok(output) => (true, output),
            Err(error) => (false, error.to_string()),
        };
        let (finished, execution_status) = if succeeded {
            (ApprovalStatus::Executed, ExecutionStatus::Succeeded)
        } else {
            (ApprovalStatus::Failed, ExecutionStatus::Failed)
        };
        let now = Utc::now();
        let txn = crate::base::db::begin_write(&self.0.db).await?;
        let output = self
            .pseudonymise_in(&txn, view.row.incident_id, |b, shield| {
                b.pseudonymise(shield, &raw_output)
            })
            .await?;
        drop(raw_output);
        let closed = approval::Entity::update_many()
            .col_expr(approval::Column::Status, Expr::value(finished))
            .col_expr(
                approval::Column::Version,
                Expr::col(approval::Column::Version).add(1),
            )
            .col_expr(approval::Column::UpdatedAt, Expr::value(now))
            .filter(approval::Column::Id.eq(id))
            .filter(approval::Column::Status.eq(ApprovalStatus::Executing))
            .exec(&txn)
            .await?
            .rows_affected;
        if closed == 0 {
            // Its lease ran out first (this process stalled past it) and it was closed as
            // interrupted; the late outcome is logged, not recorded over that.
            txn.rollback().await?;
            tracing::error!(approval = id, succeeded, %output, "execution finished after its lease ran out; it was already closed as interrupted");
            return Err(ApprovalError::Conflict(format!(
                "approval {id} was closed as interrupted before its outcome arrived"
            )));
        }
        execution::Entity::update_many()
            .col_expr(execution::Column::Status, Expr::value(execution_status))
            .col_expr(execution::Column::Output, Expr::value(output.clone()))
            .col_expr(execution::Column::FinishedAt, Expr::value(now))
            .filter(execution::Column::ApprovalId.eq(id))
            .exec(&txn)
            .await?;
        let survivor = self
            .move_incident(&txn, view, request, succeeded, now)
            .await?;
        let event = if succeeded {
            EventKind::ApprovalExecuted
        } else {
            EventKind::ApprovalFailed
        };
        self.notice_in(&txn, event, id, "system").await?;
        let action = if succeeded {
            "approval.executed"
        } else {
            "approval.failed"
        };
        audit_approval(&txn, action, id, json!({"output": output})).await?;
        let signed = !view.signatures.is_empty();
        let outbox = learn_in(&txn, &view.row, signed, succeeded, &output).await?;
        txn.commit().await?;
        self.incident_changed(view.row.incident_id);
        if survivor != view.row.incident_id {
            self.incident_changed(survivor);
        }
        self.notify(id);
        Ok(outbox)
    }

    /// The incident an execution moves (the survivor of a merge): MITIGATING after a fix that
    /// ran, RESOLVED after a FinOps fix (nothing is firing: the waste was the incident).
    /// Diagnostics read; they do not mitigate. Returns the incident moved.
    async fn move_incident(
        &self,
        txn: &DatabaseTransaction,
        view: &ApprovalView,
        request: &ActionRequest,
        succeeded: bool,
        now: DateTime<Utc>,
    ) -> Result<i32, DbErr> {
        let survivor = survivor_of(txn, view.row.incident_id).await?;
        if !succeeded || request.kind == "run_diagnostics" {
            return Ok(survivor);
        }
        let fixed_waste = view.row.finops.is_some();
        incident::Entity::update_many()
            .col_expr(
                incident::Column::Status,
                Expr::value(if fixed_waste {
                    IncidentStatus::Resolved
                } else {
                    IncidentStatus::Mitigating
                }),
            )
            .col_expr(
                incident::Column::ResolvedAt,
                Expr::value(fixed_waste.then_some(now)),
            )
            .col_expr(incident::Column::UpdatedAt, Expr::value(now))
            .filter(incident::Column::Id.eq(survivor))
            // ANALYZING too: an analysis still running must not put it back to
            // AWAITING_APPROVAL (its final update is conditional on ANALYZING).
            .filter(incident::Column::Status.is_in([
                IncidentStatus::Open,
                IncidentStatus::Analyzing,
                IncidentStatus::AwaitingApproval,
            ]))
            .exec(txn)
            .await?;
        if fixed_waste {
            notify::enqueue_in(
                txn,
                EventKind::IncidentResolved,
                Some(view.row.incident_id),
                None,
                "system",
            )
            .await?;
        }
        Ok(survivor)
    }

    /// Executions whose lease ran out (the process running them stopped mid-way) end FAILED:
    /// whether the action took effect is unknown, so it is never run again by itself; a
    /// person checks the target and proposes it anew. Each gets its knowledge entry, through
    /// the outbox. An EXECUTING approval with no lease (written before leases) counts from
    /// its last update. Returns how many.
    pub async fn fail_interrupted(&self) -> Result<usize, DbErr> {
        let lease = self.0.config.execution_lease;
        let executing = approval::Entity::find()
            .filter(approval::Column::Status.eq(ApprovalStatus::Executing))
            .all(&self.0.db)
            .await?;
        let mut closed = 0;
        for row in executing {
            let now = Utc::now();
            let ran = execution::Entity::find()
                .filter(execution::Column::ApprovalId.eq(row.id))
                .one(&self.0.db)
                .await?;
            let leased = ran.as_ref().and_then(|r| r.lease_until);
            let ran_out = match leased {
                Some(until) => until < now,
                None => row.updated_at < now - lease,
            };
            if !ran_out {
                continue;
            }
            let why = "interrupted: the server running it stopped before it finished; \
                       check the target before proposing it again";
            let txn = crate::base::db::begin_write(&self.0.db).await?;
            // Conditional on what was read: a lease renewed meanwhile, or an outcome
            // recorded meanwhile, keeps it.
            let mut approval_update = approval::Entity::update_many()
                .col_expr(
                    approval::Column::Status,
                    Expr::value(ApprovalStatus::Failed),
                )
                .col_expr(
                    approval::Column::Version,
                    Expr::col(approval::Column::Version).add(1),
                )
                .col_expr(approval::Column::UpdatedAt, Expr::value(now))
                .filter(approval::Column::Id.eq(row.id))
                .filter(approval::Column::Status.eq(ApprovalStatus::Executing));
            if leased.is_none() {
                approval_update =
                    approval_update.filter(approval::Column::UpdatedAt.lt(now - lease));
            }
            let mut execution_update = execution::Entity::update_many()
                .col_expr(
                    execution::Column::Status,
                    Expr::value(ExecutionStatus::Failed),
                )
                .col_expr(execution::Column::Output, Expr::value(why))
                .col_expr(execution::Column::FinishedAt, Expr::value(now))
                .filter(execution::Column::ApprovalId.eq(row.id))
                .filter(execution::Column::Status.eq(ExecutionStatus::Running));
            if leased.is_some() {
                execution_update = execution_update.filter(execution::Column::LeaseUntil.lt(now));
                if execution_update.exec(&txn).await?.rows_affected == 0 {
                    txn.rollback().await?;
                    continue;
                }
                if approval_update.exec(&txn).await?.rows_affected == 0 {
                    txn.rollback().await?;
                    continue;
                }
            } else {
                if approval_update.exec(&txn).await?.rows_affected == 0 {
                    txn.rollback().await?;
                    continue;
                }
                execution_update.exec(&txn).await?;
            }
            self.notice_in(&txn, EventKind::ApprovalFailed, row.id, "system")
                .await?;
            audit_approval(&txn, "approval.failed", row.id, json!({"output": why})).await?;
            let signed = approval_signature::Entity::find()
                .filter(approval_signature::Column::ApprovalId.eq(row.id))
                .count(&txn)
                .await?
                > 0;
            let outbox = learn_in(&txn, &row, signed, false, why).await?;
            txn.commit().await?;
            tracing::warn!(approval = row.id, "execution interrupted; marked FAILED");
            self.notify(row.id);
            if let Some(outbox) = outbox {
                self.0.knowledge.deliver(outbox).await;
            }
            closed += 1;
        }
        Ok(closed)
    }

    /// Background duties: expire what is due, close executions whose lease ran out, and run
    /// approvals left APPROVED (e.g. by a restart between the last signature and execution).
    /// Ticks every `every`, or every half lease if that is shorter.
    pub fn start_worker(&self, every: std::time::Duration) {
        let this = self.clone();
        let half_lease = (self.0.config.execution_lease / 2)
            .to_std()
            .unwrap_or(every)
            .max(std::time::Duration::from_millis(500));
        let every = every.min(half_lease);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(error) = this.expire_due().await {
                    tracing::warn!(%error, "expiring approvals failed");
                }
                if let Err(error) = this.fail_interrupted().await {
                    tracing::warn!(%error, "closing interrupted executions failed");
                }
                let waiting = approval::Entity::find()
                    .filter(approval::Column::Status.eq(ApprovalStatus::Approved))
                    .all(&this.0.db)
                    .await;
                match waiting {
                    Ok(rows) => {
                        for row in rows {
                            match this.execute(row.id).await {
                                Ok(_) | Err(ApprovalError::Conflict(_)) => {}
                                Err(error) => {
                                    tracing::error!(approval = row.id, %error, "execution failed")
                                }
                            }
                        }
                    }
                    Err(error) => tracing::warn!(%error, "reading approved approvals failed"),
                }
            }
        });
    }
}

/// What the re-check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    /// The state moved since the approval: never run.
    Voided,
    /// Claimed as EXECUTING: run it.
    Running,
}

/// Renews an execution's lease while it lives.
struct LeaseGuard(tokio::task::JoinHandle<()>);

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The execution's knowledge entry (B_MANUAL, B_AUTO_*, PLAYBOOK), put in the outbox inside
/// the transaction that records the outcome. `output` is labelled already.
async fn learn_in(
    txn: &DatabaseTransaction,
    row: &approval::Model,
    signed: bool,
    succeeded: bool,
    output: &str,
) -> Result<Option<i32>, DbErr> {
    use crate::services::knowledge;
    match knowledge::execution_entry(txn, row, signed, succeeded, output).await? {
        Some(entry) => knowledge::enqueue_in(txn, &entry).await,
        None => Ok(None),
    }
}

/// The audit event of an approval's step, in the step's transaction (appended last).
async fn audit_approval(
    txn: &DatabaseTransaction,
    action: &str,
    id: i32,
    details: serde_json::Value,
) -> Result<(), DbErr> {
    crate::base::audit::append_in(txn, "system", action, &format!("approval:{id}"), details)
        .await
        .map(drop)
}
