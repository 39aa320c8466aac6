//! The entries the loop writes: one per execution, one per resolution (path A), and the
//! watcher and sweep that write resolutions.

use super::*;

/// What an entry says about its incident: title, service, alert names, root cause.
pub(super) struct Facts {
    pub(super) title: String,
    pub(super) service: Option<String>,
    pub(super) alert_names: Vec<String>,
    pub(super) root_cause: Option<String>,
    pub(super) summary: Option<String>,
}

pub(super) async fn facts<C: ConnectionTrait>(
    db: &C,
    incident_id: i32,
) -> Result<Option<Facts>, DbErr> {
    use entity::{alert, analysis, incident};
    let Some(found) = incident::Entity::find_by_id(incident_id).one(db).await? else {
        return Ok(None);
    };
    let mut alert_names: Vec<String> = alert::Entity::find()
        .filter(alert::Column::IncidentId.eq(incident_id))
        .all(db)
        .await?
        .into_iter()
        .map(|a| a.name)
        .collect();
    alert_names.sort();
    alert_names.dedup();
    let analysed = analysis::Entity::find()
        .filter(analysis::Column::IncidentId.eq(incident_id))
        .one(db)
        .await?;
    Ok(Some(Facts {
        title: found.title,
        service: found.service,
        alert_names,
        root_cause: analysed.as_ref().and_then(|a| a.root_cause.clone()),
        summary: analysed.map(|a| a.summary),
    }))
}

/// The entry for a finished execution: B_MANUAL when people signed it, B_AUTO_* when it ran
/// by itself (LOW), PLAYBOOK for an Ansible playbook. `output` is pseudonymised already.
pub async fn execution_entry<C: ConnectionTrait>(
    db: &C,
    approval: &entity::approval::Model,
    signed_by_people: bool,
    succeeded: bool,
    output: &str,
) -> Result<Option<Entry>, DbErr> {
    let Some(facts) = facts(db, approval.incident_id).await? else {
        return Ok(None);
    };
    let path_type = if approval.kind.starts_with("ansible:") {
        PathType::Playbook
    } else if signed_by_people {
        PathType::BManual
    } else if succeeded {
        PathType::BAutoSuccess
    } else {
        PathType::BAutoFailure
    };
    let action = format!("{} {}", approval.kind, approval.target);
    let verdict = if succeeded { "worked" } else { "failed" };
    Ok(Some(Entry {
        incident_id: approval.incident_id,
        path_type,
        related_approval_id: Some(approval.id),
        title: format!("{action} {verdict} on \"{}\"", facts.title),
        body: format!(
            "Why: {}\nOutput: {}",
            approval.rationale,
            output.chars().take(4_000).collect::<String>()
        ),
        service: facts.service,
        alert_names: facts.alert_names,
        root_cause: facts.root_cause,
        action: Some(action),
        outcome: Some(if succeeded {
            FixOutcome::Worked
        } else {
            FixOutcome::Failed
        }),
    }))
}

/// The path-A entry of a resolved incident: what happened, the root cause, what fixed it.
pub async fn resolution_entry(
    db: &DatabaseConnection,
    incident_id: i32,
) -> Result<Option<Entry>, DbErr> {
    use entity::{approval, execution};
    let Some(facts) = facts(db, incident_id).await? else {
        return Ok(None);
    };
    let approvals = approval::Entity::find()
        .filter(approval::Column::IncidentId.eq(incident_id))
        .order_by_asc(approval::Column::Id)
        .all(db)
        .await?;
    let mut fixes = Vec::new();
    let mut last = None;
    for a in &approvals {
        let ran = execution::Entity::find()
            .filter(execution::Column::ApprovalId.eq(a.id))
            .one(db)
            .await?;
        if let Some(ran) = ran.filter(|e| e.status != ExecutionStatus::Running) {
            let worked = ran.status == ExecutionStatus::Succeeded;
            fixes.push(format!(
                "{} {} {}",
                a.kind,
                a.target,
                if worked { "worked" } else { "failed" }
            ));
            last = Some((a, worked));
        }
    }
    let (action, outcome) = match last {
        Some((a, worked)) => (
            Some(format!("{} {}", a.kind, a.target)),
            Some(if worked {
                FixOutcome::Worked
            } else {
                FixOutcome::Failed
            }),
        ),
        None => (None, None),
    };
    Ok(Some(Entry {
        incident_id,
        path_type: PathType::A,
        related_approval_id: last.map(|(a, _)| a.id),
        title: format!("Resolved: {}", facts.title),
        body: format!(
            "{}\nRoot cause: {}\nFixes: {}",
            facts.summary.as_deref().unwrap_or("No analysis."),
            facts.root_cause.as_deref().unwrap_or("unknown"),
            if fixes.is_empty() {
                "none; it resolved by itself".to_owned()
            } else {
                fixes.join("; ")
            }
        ),
        service: facts.service,
        alert_names: facts.alert_names,
        root_cause: facts.root_cause,
        action,
        outcome,
    }))
}

impl KmWriter {
    /// Writes the path-A entry of every resolved incident that has none yet (the sweep that
    /// catches what a missed notification would lose). Returns how many it wrote.
    pub async fn sweep_resolved(&self) -> Result<usize, DbErr> {
        use entity::incident;
        let resolved: Vec<i32> = incident::Entity::find()
            .filter(incident::Column::Status.eq(IncidentStatus::Resolved))
            .filter(
                Expr::col((incident::Entity, incident::Column::Id)).not_in_subquery(
                    sea_orm::sea_query::Query::select()
                        .column(knowledge_entry::Column::IncidentId)
                        .from(knowledge_entry::Entity)
                        .and_where(knowledge_entry::Column::PathType.eq(PathType::A.as_str()))
                        .to_owned(),
                ),
            )
            .order_by_asc(incident::Column::Id)
            .all(&self.0.db)
            .await?
            .into_iter()
            .map(|i| i.id)
            .collect();
        let mut written = 0;
        for id in resolved {
            if self.learn_resolution(id).await {
                written += 1;
            }
        }
        Ok(written)
    }

    /// Path A for one incident, if it is resolved. True if something was handed over.
    pub async fn learn_resolution(&self, incident_id: i32) -> bool {
        let found = match entity::incident::Entity::find_by_id(incident_id)
            .one(&self.0.db)
            .await
        {
            Ok(Some(found)) if found.status == IncidentStatus::Resolved => found,
            Ok(_) => return false,
            Err(e) => {
                tracing::warn!(incident = incident_id, error = %e, "cannot read the incident for its postmortem; the sweep retries");
                return false;
            }
        };
        // The postmortem first: it is the body of the path-A entry.
        let markdown = match self.store_postmortem(&found).await {
            Ok(markdown) => markdown,
            Err(e) => {
                tracing::warn!(incident = incident_id, error = %e, "postmortem not stored; the sweep retries");
                return false;
            }
        };
        match resolution_entry(&self.0.db, incident_id).await {
            Ok(Some(mut entry)) => {
                entry.body = super::postmortem::entry_body(&markdown);
                match self.write(entry).await {
                    Ok(_) => true,
                    Err(e) => {
                        tracing::error!(incident = incident_id, error = %e, "path-A knowledge entry failed");
                        false
                    }
                }
            }
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(incident = incident_id, error = %e, "cannot read the incident for its knowledge entry; the sweep retries");
                false
            }
        }
    }

    /// Watches incident updates: each one that is RESOLVED gets its path-A entry (idempotent);
    /// a periodic sweep covers notifications the broadcast dropped.
    pub fn watch_resolutions(&self, bus: &crate::base::bus::Bus) {
        let mut updates = bus.incidents();
        let writer = self.clone();
        tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                match updates.recv().await {
                    Ok(id) => {
                        let resolved = entity::incident::Entity::find_by_id(id)
                            .one(&writer.0.db)
                            .await
                            .ok()
                            .flatten()
                            .is_some_and(|i| i.status == IncidentStatus::Resolved);
                        if resolved {
                            writer.learn_resolution(id).await;
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        let _ = writer.sweep_resolved().await;
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
        let writer = self.clone();
        let every = Duration::from_secs(self.0.config.replay_every_seconds);
        tokio::spawn(async move {
            loop {
                if let Err(e) = writer.sweep_resolved().await {
                    tracing::warn!(error = %e, "knowledge sweep of resolved incidents failed");
                }
                tokio::time::sleep(every).await;
            }
        });
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.0.db
    }
}
