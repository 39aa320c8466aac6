//! An incident's timeline, and the facts its postmortem is written from, read from what the
//! loop stored: alerts, correlation notes, analysis conclusions, the audit events of its
//! approvals, executions, notification deliveries, the on-call steps (acknowledged, assigned,
//! from the audit trail; the comments) and the resolution. Every text is the
//! pseudonymised form (it comes from the database); nothing is stored twice for this.

use chrono::{DateTime, Utc};
use engine::postmortem::{
    ActionSummary, AlertSummary, AnalysisSummary, PostmortemFacts, SignatureSummary, TimelineEntry,
    TimelineKind, excerpt, sort_timeline,
};
use entity::{
    alert, analysis, approval, approval_signature, audit_event, execution, incident,
    incident_comment, notification_delivery, notification_event, silence, silenced_alert,
    thinking_event,
};
use sea_orm::sea_query::Condition;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::Value;

use crate::services::notify::EventKind;

/// The thinking kind of correlation notes (written by ingest).
const CORRELATION: &str = "correlation";
/// The thinking kind that ends an analysis run.
const CONCLUSION: &str = "CONCLUSION";
/// How much of an execution's output a timeline entry quotes.
const OUTPUT_EXCERPT: usize = 500;

/// The incident, then those merged into it, oldest first.
pub async fn family(db: &impl ConnectionTrait, id: i32) -> Result<Vec<i32>, DbErr> {
    let mut ids = vec![id];
    ids.extend(
        incident::Entity::find()
            .select_only()
            .column(incident::Column::Id)
            .filter(incident::Column::MergedInto.eq(id))
            .order_by_asc(incident::Column::Id)
            .into_tuple::<i32>()
            .all(db)
            .await?,
    );
    Ok(ids)
}

fn text_of(details: &Value, key: &str) -> Option<String> {
    match details.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn alert_start(a: &alert::Model) -> DateTime<Utc> {
    // The source's start when it is earlier than the first sighting (the alert fired before
    // it reached us); otherwise when we first saw it.
    a.starts_at
        .filter(|s| *s <= a.first_seen)
        .unwrap_or(a.first_seen)
}

/// What one approval's audit event says, as a timeline entry.
fn approval_step(
    event: &audit_event::Model,
    kind: TimelineKind,
    row: &approval::Model,
) -> Vec<TimelineEntry> {
    let details: Value = serde_json::from_str(&event.details).unwrap_or(Value::Null);
    let action = format!("{} {}", row.kind, row.target);
    let entry = |kind, actor: &str, text: String| TimelineEntry {
        at: event.at,
        kind,
        actor: actor.to_owned(),
        text,
    };
    match kind {
        TimelineKind::Proposed => {
            let risk = text_of(&details, "effective_risk").unwrap_or_default();
            let passed = details.get("dry_run_passed").and_then(Value::as_bool);
            let mut out = vec![entry(
                kind,
                &event.actor,
                format!(
                    "`{action}` proposed (approval {}): {risk} risk, dry-run {}",
                    row.id,
                    match passed {
                        Some(true) => "passed",
                        Some(false) => "failed",
                        None => "not recorded",
                    }
                ),
            )];
            if text_of(&details, "status").as_deref() == Some("APPROVED") {
                out.push(entry(
                    TimelineKind::Approved,
                    "policy",
                    format!("`{action}` approved without signatures ({risk} risk)"),
                ));
            }
            out
        }
        TimelineKind::Signed | TimelineKind::Approved | TimelineKind::Rejected => {
            let decision = text_of(&details, "decision")
                .unwrap_or_default()
                .to_ascii_lowercase();
            let role = text_of(&details, "role").unwrap_or_default();
            let comment = text_of(&details, "comment")
                .map(|c| format!(": \"{}\"", excerpt(&c, 300)))
                .unwrap_or_default();
            let quorum = if kind == TimelineKind::Approved {
                ", quorum reached"
            } else {
                ""
            };
            vec![entry(
                kind,
                &event.actor,
                format!("{decision} `{action}` as {role}{quorum}{comment}"),
            )]
        }
        TimelineKind::Voided => vec![entry(
            kind,
            &event.actor,
            format!(
                "`{action}` voided before it ran: {}",
                text_of(&details, "reason").unwrap_or_else(|| "no reason recorded".into())
            ),
        )],
        TimelineKind::Superseded => vec![entry(
            kind,
            &event.actor,
            match text_of(&details, "superseded_by") {
                Some(by) => format!("`{action}` superseded by approval {by}"),
                None => format!("`{action}` superseded: the newer analysis proposed no action"),
            },
        )],
        TimelineKind::Expired => vec![entry(
            kind,
            &event.actor,
            format!("`{action}` expired unsigned"),
        )],
        TimelineKind::Executing => vec![entry(
            kind,
            &event.actor,
            format!(
                "`{action}` executing on {} after the re-check passed",
                text_of(&details, "executor").unwrap_or_else(|| "its executor".into())
            ),
        )],
        _ => {
            let output = text_of(&details, "output").unwrap_or_default();
            let verdict = if kind == TimelineKind::Executed {
                "succeeded"
            } else {
                "failed"
            };
            vec![entry(
                kind,
                &event.actor,
                if output.trim().is_empty() {
                    format!("`{action}` {verdict}")
                } else {
                    format!(
                        "`{action}` {verdict}: {}",
                        excerpt(output.trim(), OUTPUT_EXCERPT)
                    )
                },
            )]
        }
    }
}

/// Everything that happened to `found` (and to incidents merged into it), ordered.
pub async fn timeline(
    db: &impl ConnectionTrait,
    found: &incident::Model,
) -> Result<Vec<TimelineEntry>, DbErr> {
    let ids = family(db, found.id).await?;
    timeline_of(db, found, &ids).await
}

/// What people did on the incidents `ids`: acknowledgements and assignments (their audit
/// events) and comments (their first line).
async fn oncall_steps(db: &impl ConnectionTrait, ids: &[i32]) -> Result<Vec<TimelineEntry>, DbErr> {
    let subjects: Vec<String> = ids.iter().map(|id| format!("incident:{id}")).collect();
    let mut out = Vec::new();
    for event in audit_event::Entity::find()
        .filter(audit_event::Column::Subject.is_in(subjects))
        .filter(audit_event::Column::Action.is_in([
            "incident.acknowledged",
            "incident.assigned",
            "incident.escalated",
        ]))
        .order_by_asc(audit_event::Column::Id)
        .all(db)
        .await?
    {
        let details: Value = serde_json::from_str(&event.details).unwrap_or(Value::Null);
        let (kind, text) = match event.action.as_str() {
            "incident.acknowledged" => (
                TimelineKind::Acknowledged,
                format!("acknowledged by {}", event.actor),
            ),
            "incident.escalated" => {
                let people = details["recipients"]
                    .as_array()
                    .map(|r| {
                        r.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .filter(|p| !p.is_empty());
                let target = text_of(&details, "target").unwrap_or_default();
                let about = text_of(&details, "approval")
                    .map(|a| format!(" about approval #{a}"))
                    .unwrap_or_default();
                (
                    TimelineKind::Escalated,
                    format!(
                        "paged {}{about} ({target}; step {} of policy {})",
                        people.as_deref().unwrap_or("nobody on call"),
                        text_of(&details, "step").unwrap_or_default(),
                        text_of(&details, "policy").unwrap_or_default()
                    ),
                )
            }
            _ => (
                TimelineKind::Assigned,
                match text_of(&details, "assignee") {
                    Some(who) => format!("assigned to {who}"),
                    None => "unassigned".to_owned(),
                },
            ),
        };
        out.push(TimelineEntry {
            at: event.at,
            kind,
            actor: event.actor,
            text,
        });
    }
    for comment in incident_comment::Entity::find()
        .filter(incident_comment::Column::IncidentId.is_in(ids.to_vec()))
        .order_by_asc(incident_comment::Column::Id)
        .all(db)
        .await?
    {
        out.push(TimelineEntry {
            at: comment.created_at,
            kind: TimelineKind::Commented,
            actor: comment.author,
            text: format!("commented: {}", excerpt(&comment.body, 300)),
        });
    }
    let held = silenced_alert::Entity::find()
        .filter(silenced_alert::Column::IncidentId.is_in(ids.to_vec()))
        .order_by_asc(silenced_alert::Column::Id)
        .all(db)
        .await?;
    if !held.is_empty() {
        let silences = silence::Entity::find()
            .filter(
                silence::Column::Id.is_in(held.iter().map(|h| h.silence_id).collect::<Vec<_>>()),
            )
            .all(db)
            .await?;
        for h in held {
            let by = silences
                .iter()
                .find(|s| s.id == h.silence_id)
                .map(|s| match &s.name {
                    Some(name) => format!("maintenance window #{} {name}", s.id),
                    None => format!("silence #{} {}", s.id, s.matchers),
                })
                .unwrap_or_else(|| format!("silence #{}", h.silence_id));
            let resolved = if h.status == engine::alert::AlertStatus::Resolved {
                "; it resolved meanwhile"
            } else {
                ""
            };
            out.push(TimelineEntry {
                at: h.first_seen,
                kind: TimelineKind::Silenced,
                actor: "system".into(),
                text: format!(
                    "{} held back by {by}: {} firing(s) until {}{resolved}",
                    h.name,
                    h.count,
                    h.last_seen.format("%H:%M:%S UTC")
                ),
            });
        }
    }
    Ok(out)
}

/// [`timeline`] of `found` and its family `ids` (as [`family`] gives them).
async fn timeline_of(
    db: &impl ConnectionTrait,
    found: &incident::Model,
    ids: &[i32],
) -> Result<Vec<TimelineEntry>, DbErr> {
    let ids = ids.to_vec();
    let mut out = Vec::new();
    let system = |at, kind, text: String| TimelineEntry {
        at,
        kind,
        actor: "system".into(),
        text,
    };

    for member in incident::Entity::find()
        .filter(incident::Column::Id.is_in(ids.clone()))
        .all(db)
        .await?
    {
        let whose = if member.id == found.id {
            String::new()
        } else {
            format!("incident {} ", member.id)
        };
        out.push(system(
            member.created_at,
            TimelineKind::Opened,
            format!("{whose}opened: {}", member.title),
        ));
        if let Some(at) = member.resolved_at {
            out.push(system(
                at,
                TimelineKind::Resolved,
                format!("{whose}resolved: every alert resolved"),
            ));
        }
    }

    for a in alert::Entity::find()
        .filter(alert::Column::IncidentId.is_in(ids.clone()))
        .order_by_asc(alert::Column::Id)
        .all(db)
        .await?
    {
        let on = a
            .service
            .as_ref()
            .map(|s| format!(" on {s}"))
            .unwrap_or_default();
        out.push(TimelineEntry {
            at: alert_start(&a),
            kind: TimelineKind::AlertFired,
            actor: a.source.clone(),
            text: format!("{}{on} fired ({})", a.name, a.severity.as_str()),
        });
        if a.count > 1 {
            out.push(TimelineEntry {
                at: a.last_seen,
                kind: TimelineKind::AlertRepeated,
                actor: a.source.clone(),
                text: format!("{}{on}: {} firings so far", a.name, a.count),
            });
        }
        if a.status == engine::alert::AlertStatus::Resolved {
            out.push(TimelineEntry {
                at: a.ends_at.unwrap_or(a.last_seen),
                kind: TimelineKind::AlertResolved,
                actor: a.source.clone(),
                text: format!("{}{on} resolved", a.name),
            });
        }
    }

    for note in thinking_event::Entity::find()
        .filter(thinking_event::Column::IncidentId.is_in(ids.clone()))
        .filter(thinking_event::Column::Kind.is_in([CORRELATION, CONCLUSION]))
        .order_by_asc(thinking_event::Column::Id)
        .all(db)
        .await?
    {
        let kind = match note.kind.as_str() {
            CONCLUSION => TimelineKind::Analysed,
            _ if note.text.starts_with("Merged") => TimelineKind::Merged,
            _ => TimelineKind::Correlated,
        };
        let actor = if kind == TimelineKind::Analysed {
            "brain"
        } else {
            "system"
        };
        out.push(TimelineEntry {
            at: note.at,
            kind,
            actor: actor.into(),
            text: note.text,
        });
    }

    out.extend(oncall_steps(db, &ids).await?);

    let approvals = approval::Entity::find()
        .filter(approval::Column::IncidentId.is_in(ids.clone()))
        .order_by_asc(approval::Column::Id)
        .all(db)
        .await?;
    if !approvals.is_empty() {
        let subjects: Vec<String> = approvals
            .iter()
            .map(|a| format!("approval:{}", a.id))
            .collect();
        for event in audit_event::Entity::find()
            .filter(audit_event::Column::Subject.is_in(subjects))
            .order_by_asc(audit_event::Column::Id)
            .all(db)
            .await?
        {
            let Some(kind) = TimelineKind::of_approval_audit(&event.action) else {
                continue;
            };
            let Some(row) = event
                .subject
                .strip_prefix("approval:")
                .and_then(|id| id.parse::<i32>().ok())
                .and_then(|id| approvals.iter().find(|a| a.id == id))
            else {
                continue;
            };
            out.extend(approval_step(&event, kind, row));
        }
    }

    let approval_ids: Vec<i32> = approvals.iter().map(|a| a.id).collect();
    let mut which = Condition::any().add(notification_event::Column::IncidentId.is_in(ids));
    if !approval_ids.is_empty() {
        which = which.add(notification_event::Column::ApprovalId.is_in(approval_ids));
    }
    let events = notification_event::Entity::find()
        .filter(which)
        .order_by_asc(notification_event::Column::Id)
        .all(db)
        .await?;
    if !events.is_empty() {
        let deliveries = notification_delivery::Entity::find()
            .filter(
                notification_delivery::Column::EventId
                    .is_in(events.iter().map(|e| e.id).collect::<Vec<_>>()),
            )
            .order_by_asc(notification_delivery::Column::Id)
            .all(db)
            .await?;
        for d in deliveries {
            let Some(event) = events.iter().find(|e| e.id == d.event_id) else {
                continue;
            };
            let what = EventKind::parse(&event.kind)
                .map(|k| k.headline())
                .unwrap_or(event.kind.as_str());
            match (d.status, d.delivered_at) {
                (entity::states::DeliveryStatus::Delivered, Some(at)) => out.push(system(
                    at,
                    TimelineKind::Notified,
                    format!("\"{what}\" delivered to {}", d.channel),
                )),
                (entity::states::DeliveryStatus::Dead, _) => out.push(system(
                    d.next_attempt_at.max(d.created_at),
                    TimelineKind::Notified,
                    format!(
                        "\"{what}\" to {} failed after {} attempt(s)",
                        d.channel, d.attempts
                    ),
                )),
                _ => {}
            }
        }
    }

    sort_timeline(&mut out);
    Ok(out)
}

fn facts_of(json: &str) -> Vec<String> {
    serde_json::from_str::<Vec<engine::brain::GraphFact>>(json)
        .unwrap_or_default()
        .into_iter()
        .map(|f| {
            let kind = serde_json::to_value(f.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            format!("{} ({kind}, depth {})", f.service, f.depth)
        })
        .collect()
}

/// What the postmortem of `found` is written from, but what the knowledge base knew (the
/// caller's to add).
pub async fn postmortem_facts(
    db: &impl ConnectionTrait,
    found: &incident::Model,
) -> Result<PostmortemFacts, DbErr> {
    let ids = family(db, found.id).await?;
    let timeline = timeline_of(db, found, &ids).await?;
    let alerts = alert::Entity::find()
        .filter(alert::Column::IncidentId.is_in(ids.clone()))
        .order_by_asc(alert::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(|a| AlertSummary {
            first_seen: alert_start(&a),
            name: a.name,
            service: a.service,
            severity: a.severity.as_str().to_owned(),
            count: i64::from(a.count),
            last_seen: a.last_seen,
            resolved: a.status == engine::alert::AlertStatus::Resolved,
        })
        .collect();
    let analysis = analysis::Entity::find_by_id(found.id)
        .one(db)
        .await?
        .map(|a| AnalysisSummary {
            root_causes: facts_of(&a.root_causes),
            blast_radius: facts_of(&a.blast_radius),
            brain: a.brain,
            summary: a.summary,
            root_cause: a.root_cause,
            confidence: a.confidence,
            runs: a.runs,
        });
    let mut actions = Vec::new();
    for row in approval::Entity::find()
        .filter(approval::Column::IncidentId.is_in(ids.clone()))
        .order_by_asc(approval::Column::Id)
        .all(db)
        .await?
    {
        let signatures = approval_signature::Entity::find()
            .filter(approval_signature::Column::ApprovalId.eq(row.id))
            .order_by_asc(approval_signature::Column::Id)
            .all(db)
            .await?
            .into_iter()
            .map(|s| SignatureSummary {
                signer: s.signer,
                role: s.role.as_str().to_owned(),
                decision: s.decision.as_str().to_owned(),
                at: s.at,
                comment: s.comment,
            })
            .collect();
        let ran = execution::Entity::find()
            .filter(execution::Column::ApprovalId.eq(row.id))
            .one(db)
            .await?
            .map(|e| (e.status.as_str().to_owned(), e.output));
        let dry_run_passed = serde_json::from_str::<Value>(&row.dry_run)
            .ok()
            .and_then(|v| v.get("passed").and_then(Value::as_bool))
            .unwrap_or(false);
        actions.push(ActionSummary {
            approval_id: row.id,
            action: format!("{} {}", row.kind, row.target),
            namespace: row.namespace,
            requested_by: row.requested_by,
            risk: row.effective_risk.as_str().to_owned(),
            status: row.status.as_str().to_owned(),
            dry_run_passed,
            signatures,
            execution: ran,
            void_reason: row.void_reason,
        });
    }
    Ok(PostmortemFacts {
        incident_id: found.id,
        title: found.title.clone(),
        severity: found.severity.as_str().to_owned(),
        status: found.status.as_str().to_owned(),
        service: found.service.clone(),
        alerts,
        analysis,
        actions,
        known: Vec::new(),
        timeline,
        written_summary: None,
        merged_from: ids.into_iter().skip(1).collect(),
    })
}
