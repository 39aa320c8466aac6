//! Analysis that settles. An incident is analysed once no change has reached it for the quiet
//! period (or the cap after the first change it waits on), and again whenever what the
//! analysis stood on — its [`Basis`] — changes: the root cause, the alerts, a merge, finished
//! diagnostics. Runs are bounded per incident; the thinking stream says why each one started.
//!
//! Every replica runs the timer; the claim (`OPEN|AWAITING_APPROVAL → ANALYZING`) lets one
//! of them analyse, and the others find the stored basis unchanged afterwards.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use engine::alert::AlertStatus;
use engine::policy::ApprovalStatus;
use entity::states::ExecutionStatus;
use entity::{alert, analysis, approval, execution, incident};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::{AnalysisError, Analyst, Trigger};
use crate::base::incident::IncidentStatus;

/// What an analysis stood on. Labelled values only, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Basis {
    /// The incident's root cause (`Incident.service`).
    pub root: Option<String>,
    /// `service/alertname` of every firing alert of the incident (merged ones included).
    pub alerts: BTreeSet<String>,
    /// Incidents merged into it.
    pub merged: BTreeSet<i32>,
    /// Approvals whose `run_diagnostics` finished successfully.
    pub diagnostics: BTreeSet<i32>,
}

impl Basis {
    /// The basis of `incident` now.
    pub async fn of(
        conn: &impl ConnectionTrait,
        incident: &incident::Model,
    ) -> Result<Basis, DbErr> {
        let merged: BTreeSet<i32> = incident::Entity::find()
            .select_only()
            .column(incident::Column::Id)
            .filter(incident::Column::MergedInto.eq(incident.id))
            .into_tuple::<i32>()
            .all(conn)
            .await?
            .into_iter()
            .collect();
        let alerts: Vec<(Option<String>, String)> = alert::Entity::find()
            .select_only()
            .column(alert::Column::Service)
            .column(alert::Column::Name)
            .filter(alert::Column::IncidentId.eq(incident.id))
            .filter(alert::Column::Status.eq(AlertStatus::Firing))
            .into_tuple()
            .all(conn)
            .await?;
        let mut family: Vec<i32> = merged.iter().copied().collect();
        family.push(incident.id);
        let finished: Vec<i32> = approval::Entity::find()
            .select_only()
            .column(approval::Column::Id)
            .filter(approval::Column::IncidentId.is_in(family))
            .filter(approval::Column::Kind.eq("run_diagnostics"))
            .filter(approval::Column::Status.eq(ApprovalStatus::Executed))
            .into_tuple()
            .all(conn)
            .await?;
        let succeeded: BTreeSet<i32> = if finished.is_empty() {
            BTreeSet::new()
        } else {
            execution::Entity::find()
                .select_only()
                .column(execution::Column::ApprovalId)
                .filter(execution::Column::ApprovalId.is_in(finished))
                .filter(execution::Column::Status.eq(ExecutionStatus::Succeeded))
                .into_tuple::<i32>()
                .all(conn)
                .await?
                .into_iter()
                .collect()
        };
        Ok(Basis {
            root: incident.service.clone(),
            alerts: alerts
                .into_iter()
                .map(|(service, name)| format!("{}/{name}", service.unwrap_or_default()))
                .collect(),
            merged,
            diagnostics: succeeded,
        })
    }

    /// Why a run on `self` starts after one on `before` (none: the first).
    pub fn change_since(&self, before: Option<&Basis>, quiet: Duration) -> String {
        let Some(before) = before else {
            return format!(
                "First analysis, after {:.1} s without a new alert.",
                quiet.as_secs_f64()
            );
        };
        let mut why = Vec::new();
        if self.root != before.root {
            why.push(format!(
                "the root cause changed from {} to {}",
                before.root.as_deref().unwrap_or("none"),
                self.root.as_deref().unwrap_or("none")
            ));
        }
        let merged: Vec<String> = self
            .merged
            .difference(&before.merged)
            .map(|id| format!("#{id}"))
            .collect();
        if !merged.is_empty() {
            why.push(format!(
                "incident {} merged in with its evidence",
                merged.join(", ")
            ));
        }
        let new: Vec<&str> = self
            .alerts
            .difference(&before.alerts)
            .map(String::as_str)
            .collect();
        if !new.is_empty() {
            why.push(format!("new alert(s) {}", new.join(", ")));
        }
        let gone: Vec<&str> = before
            .alerts
            .difference(&self.alerts)
            .map(String::as_str)
            .collect();
        if !gone.is_empty() {
            why.push(format!("no longer firing: {}", gone.join(", ")));
        }
        let read: Vec<String> = self
            .diagnostics
            .difference(&before.diagnostics)
            .map(|id| format!("#{id}"))
            .collect();
        if !read.is_empty() {
            why.push(format!("diagnostics {} finished", read.join(", ")));
        }
        if why.is_empty() {
            "What the last analysis stood on changed.".to_owned()
        } else {
            format!("Analysing again: {}.", why.join("; "))
        }
    }
}

/// When the settling timer looks at an incident again.
#[derive(Debug, Clone, Copy)]
pub struct Settling {
    pub quiet: Duration,
    pub max_wait: Duration,
    pub max_runs: u32,
}

/// Incidents waiting for quiet: first and latest change seen.
#[derive(Default)]
struct Waiting(HashMap<i32, (Instant, Instant)>);

impl Waiting {
    fn touch(&mut self, id: i32, now: Instant) {
        self.0.entry(id).or_insert((now, now)).1 = now;
    }

    fn due_at(&self, settling: Settling) -> Option<Instant> {
        self.0
            .values()
            .map(|(first, last)| (*last + settling.quiet).min(*first + settling.max_wait))
            .min()
    }

    fn take_due(&mut self, settling: Settling, now: Instant) -> Vec<i32> {
        let due: Vec<i32> = self
            .0
            .iter()
            .filter(|(_, (first, last))| {
                (*last + settling.quiet).min(*first + settling.max_wait) <= now
            })
            .map(|(id, _)| *id)
            .collect();
        for id in &due {
            self.0.remove(id);
        }
        due
    }
}

impl Analyst {
    /// Watches incident changes and settles each changed incident (see the module).
    pub(super) fn start_settling(&self, mut updates: broadcast::Receiver<i32>) {
        let analyst = self.clone();
        tokio::spawn(async move {
            let settling = analyst.settling();
            let mut waiting = Waiting::default();
            // What changed while no replica watched (a restart, an interrupted analysis).
            match analyst.unsettled().await {
                Ok(ids) => {
                    let now = Instant::now();
                    for id in ids {
                        waiting.touch(id, now);
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot list incidents to settle"),
            }
            loop {
                let due = waiting.due_at(settling);
                tokio::select! {
                    update = updates.recv() => match update {
                        Ok(id) => waiting.touch(id, Instant::now()),
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            tracing::warn!(missed, "analysis watcher lagged; settling every active incident");
                            if let Ok(ids) = analyst.unsettled().await {
                                let now = Instant::now();
                                for id in ids {
                                    waiting.touch(id, now);
                                }
                            }
                        }
                        Err(broadcast::error::RecvError::Closed) => break,
                    },
                    () = sleep_until(due) => {
                        for id in waiting.take_due(settling, Instant::now()) {
                            let analyst = analyst.clone();
                            tokio::spawn(async move {
                                if let Err(error) = analyst.settle(id).await {
                                    tracing::warn!(%error, incident_id = id, "analysis failed");
                                }
                            });
                        }
                    }
                }
            }
        });
    }

    /// Analyses `incident_id` if what its last analysis stood on changed (or it has none),
    /// within the run limit.
    pub async fn settle(&self, incident_id: i32) -> Result<(), AnalysisError> {
        let db = self.db();
        let Some(found) = incident::Entity::find_by_id(incident_id).one(db).await? else {
            return Ok(());
        };
        if !matches!(
            found.status,
            IncidentStatus::Open | IncidentStatus::AwaitingApproval
        ) {
            // ANALYZING: the run's end is a change, which brings it back here.
            return Ok(());
        }
        let basis = Basis::of(db, &found).await?;
        let last = analysis::Entity::find_by_id(incident_id).one(db).await?;
        let before: Option<Basis> = last
            .as_ref()
            .and_then(|a| a.basis.as_deref())
            .and_then(|b| serde_json::from_str(b).ok());
        if last.is_some() && before.as_ref() == Some(&basis) {
            return Ok(());
        }
        let settling = self.settling();
        let runs = last.as_ref().map_or(0, |a| a.runs);
        if runs >= settling.max_runs as i32 {
            if runs == settling.max_runs as i32 {
                // Said once: the counter moves past the limit.
                analysis::Entity::update_many()
                    .col_expr(analysis::Column::Runs, Expr::value(runs + 1))
                    .filter(analysis::Column::IncidentId.eq(incident_id))
                    .filter(analysis::Column::Runs.eq(runs))
                    .exec(db)
                    .await?;
                self.say(
                    incident_id,
                    "THOUGHT",
                    format!(
                        "The incident changed again, but it was analysed {runs} times automatically (the limit, [brain] max_runs); analyzeIncident runs it again."
                    ),
                )
                .await?;
            }
            return Ok(());
        }
        let reason = match (&last, &before) {
            // Claimed, never finished (its basis was cleared), or older than settling.
            (Some(_), None) => "Analysing again: the last analysis was interrupted.".to_owned(),
            _ => basis.change_since(before.as_ref(), settling.quiet),
        };
        match self.analyze(incident_id, Trigger::Settled(reason)).await {
            Ok(_) | Err(AnalysisError::Busy(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Incidents that may need settling: every OPEN or AWAITING_APPROVAL one, and ANALYZING
    /// ones whose analysis was interrupted (claimed longer ago than the lease), put back to
    /// OPEN first.
    async fn unsettled(&self) -> Result<Vec<i32>, DbErr> {
        let db = self.db();
        let lease = chrono::Duration::from_std(self.lease()).unwrap_or(chrono::Duration::MAX);
        let stale: Vec<i32> = incident::Entity::find()
            .select_only()
            .column(incident::Column::Id)
            .filter(incident::Column::Status.eq(IncidentStatus::Analyzing))
            .filter(incident::Column::UpdatedAt.lt(chrono::Utc::now() - lease))
            .into_tuple()
            .all(db)
            .await?;
        for id in stale {
            let reopened = incident::Entity::update_many()
                .col_expr(incident::Column::Status, Expr::value(IncidentStatus::Open))
                .filter(incident::Column::Id.eq(id))
                .filter(incident::Column::Status.eq(IncidentStatus::Analyzing))
                .filter(incident::Column::UpdatedAt.lt(chrono::Utc::now() - lease))
                .exec(db)
                .await?;
            if reopened.rows_affected == 1 {
                // Whatever it stood on, the run did not finish: the next one must happen.
                analysis::Entity::update_many()
                    .col_expr(analysis::Column::Basis, Expr::value(Option::<String>::None))
                    .filter(analysis::Column::IncidentId.eq(id))
                    .exec(db)
                    .await?;
                tracing::warn!(incident_id = id, "an interrupted analysis runs again");
                // Its status changed: subscribers and the read cache hear of it.
                self.0.ingest.notify(id);
            }
        }
        incident::Entity::find()
            .select_only()
            .column(incident::Column::Id)
            .filter(
                incident::Column::Status
                    .is_in([IncidentStatus::Open, IncidentStatus::AwaitingApproval]),
            )
            .into_tuple()
            .all(db)
            .await
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basis(root: &str, alerts: &[&str]) -> Basis {
        Basis {
            root: Some(root.to_owned()),
            alerts: alerts.iter().map(|a| (*a).to_owned()).collect(),
            ..Basis::default()
        }
    }

    #[test]
    fn the_first_run_says_it_waited_for_quiet() {
        let now = basis("frontend", &["frontend/HighErrorRate"]);
        assert_eq!(
            now.change_since(None, Duration::from_secs(3)),
            "First analysis, after 3.0 s without a new alert."
        );
    }

    #[test]
    fn a_new_root_cause_and_its_alert_are_named() {
        let before = basis("frontend", &["frontend/HighErrorRate"]);
        let now = basis(
            "postgres-db",
            &["frontend/HighErrorRate", "postgres-db/ConnectionsExhausted"],
        );
        assert_eq!(
            now.change_since(Some(&before), Duration::from_secs(3)),
            "Analysing again: the root cause changed from frontend to postgres-db; new alert(s) postgres-db/ConnectionsExhausted."
        );
    }

    #[test]
    fn merges_and_finished_diagnostics_are_named() {
        let before = basis("db", &["db/Down"]);
        let mut now = before.clone();
        now.merged.insert(7);
        now.diagnostics.insert(12);
        assert_eq!(
            now.change_since(Some(&before), Duration::from_secs(3)),
            "Analysing again: incident #7 merged in with its evidence; diagnostics #12 finished."
        );
    }

    #[test]
    fn an_incident_is_due_after_quiet_or_at_the_cap() {
        let settling = Settling {
            quiet: Duration::from_secs(3),
            max_wait: Duration::from_secs(10),
            max_runs: 5,
        };
        let start = Instant::now();
        let mut waiting = Waiting::default();
        waiting.touch(1, start);
        assert!(
            waiting
                .take_due(settling, start + Duration::from_secs(2))
                .is_empty()
        );
        // A change every 2 s keeps postponing it, up to the cap.
        for s in [2, 4, 6, 8] {
            waiting.touch(1, start + Duration::from_secs(s));
        }
        assert!(
            waiting
                .take_due(settling, start + Duration::from_secs(9))
                .is_empty()
        );
        assert_eq!(
            waiting.take_due(settling, start + Duration::from_secs(10)),
            vec![1]
        );
        waiting.touch(2, start);
        assert_eq!(
            waiting.due_at(settling),
            Some(start + Duration::from_secs(3))
        );
    }
}
