//! Postmortems written from an incident's own record: its timeline (everything that happened
//! to it, with actor and time), its key times, and the Markdown document built from them.
//!
//! Everything here is data in, text out; the server gathers the facts from the database (all
//! pseudonymised already) and nothing is invented: a section without facts says so.

use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// What one timeline entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TimelineKind {
    /// An alert fired (its first sighting).
    AlertFired,
    /// The incident opened.
    Opened,
    /// Why an alert joined, or where it went (the correlation notes).
    Correlated,
    /// An incident was merged into this one.
    Merged,
    /// An alert repeated (its count and last sighting).
    AlertRepeated,
    /// An alert resolved.
    AlertResolved,
    /// An analysis run ended with its conclusion.
    Analysed,
    /// An action was proposed (risk and dry-run).
    Proposed,
    /// A person signed.
    Signed,
    /// The quorum was reached (or the action was LOW and approved itself).
    Approved,
    Rejected,
    /// The re-check found the state moved: never run.
    Voided,
    /// A newer analysis proposed something else.
    Superseded,
    Expired,
    /// Execution started after the re-check passed.
    Executing,
    Executed,
    /// Execution ended in failure (or was interrupted).
    Failed,
    /// A notification was delivered to a channel.
    Notified,
    /// A person acknowledged the incident.
    Acknowledged,
    /// It was assigned to someone (or unassigned).
    Assigned,
    /// A person commented.
    Commented,
    /// A silence held an alert of the incident back.
    Silenced,
    /// An escalation step paged someone.
    Escalated,
    Resolved,
}

impl TimelineKind {
    pub const ALL: [TimelineKind; 24] = [
        TimelineKind::AlertFired,
        TimelineKind::Opened,
        TimelineKind::Correlated,
        TimelineKind::Merged,
        TimelineKind::AlertRepeated,
        TimelineKind::AlertResolved,
        TimelineKind::Analysed,
        TimelineKind::Proposed,
        TimelineKind::Signed,
        TimelineKind::Approved,
        TimelineKind::Rejected,
        TimelineKind::Voided,
        TimelineKind::Superseded,
        TimelineKind::Expired,
        TimelineKind::Executing,
        TimelineKind::Executed,
        TimelineKind::Failed,
        TimelineKind::Notified,
        TimelineKind::Acknowledged,
        TimelineKind::Assigned,
        TimelineKind::Commented,
        TimelineKind::Silenced,
        TimelineKind::Escalated,
        TimelineKind::Resolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TimelineKind::AlertFired => "ALERT_FIRED",
            TimelineKind::Opened => "OPENED",
            TimelineKind::Correlated => "CORRELATED",
            TimelineKind::Merged => "MERGED",
            TimelineKind::AlertRepeated => "ALERT_REPEATED",
            TimelineKind::AlertResolved => "ALERT_RESOLVED",
            TimelineKind::Analysed => "ANALYSED",
            TimelineKind::Proposed => "PROPOSED",
            TimelineKind::Signed => "SIGNED",
            TimelineKind::Approved => "APPROVED",
            TimelineKind::Rejected => "REJECTED",
            TimelineKind::Voided => "VOIDED",
            TimelineKind::Superseded => "SUPERSEDED",
            TimelineKind::Expired => "EXPIRED",
            TimelineKind::Executing => "EXECUTING",
            TimelineKind::Executed => "EXECUTED",
            TimelineKind::Failed => "FAILED",
            TimelineKind::Notified => "NOTIFIED",
            TimelineKind::Acknowledged => "ACKNOWLEDGED",
            TimelineKind::Assigned => "ASSIGNED",
            TimelineKind::Commented => "COMMENTED",
            TimelineKind::Silenced => "SILENCED",
            TimelineKind::Escalated => "ESCALATED",
            TimelineKind::Resolved => "RESOLVED",
        }
    }

    /// The approval step an audit action records, if it is one.
    pub fn of_approval_audit(action: &str) -> Option<TimelineKind> {
        Some(match action {
            "approval.proposed" => TimelineKind::Proposed,
            "approval.signed" => TimelineKind::Signed,
            "approval.approved" => TimelineKind::Approved,
            "approval.rejected" => TimelineKind::Rejected,
            "approval.voided" => TimelineKind::Voided,
            "approval.superseded" => TimelineKind::Superseded,
            "approval.expired" => TimelineKind::Expired,
            "approval.executing" => TimelineKind::Executing,
            "approval.executed" => TimelineKind::Executed,
            "approval.failed" | "approval.interrupted" => TimelineKind::Failed,
            _ => return None,
        })
    }
}

/// One thing that happened to an incident. `text` is pseudonymised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    pub kind: TimelineKind,
    /// Who did it: a user, `system`, or the alert source.
    pub actor: String,
    pub text: String,
}

/// Orders a timeline: by time, then by the loop's order of kinds (an alert before the
/// incident it opened, a proposal before its signatures), then by text, so the same facts
/// always give the same list.
pub fn sort_timeline(entries: &mut [TimelineEntry]) {
    entries
        .sort_by(|a, b| (a.at, a.kind, &a.actor, &a.text).cmp(&(b.at, b.kind, &b.actor, &b.text)));
}

/// The moments an incident is measured by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyTimes {
    pub first_alert: Option<DateTime<Utc>>,
    /// The incident opened: the moment AWOOOI detected it.
    pub detected: Option<DateTime<Utc>>,
    pub first_proposal: Option<DateTime<Utc>>,
    /// The first person's signature, or the approval itself for an action that needed none.
    pub first_approval: Option<DateTime<Utc>>,
    /// The first execution that succeeded.
    pub mitigated: Option<DateTime<Utc>>,
    pub resolved: Option<DateTime<Utc>>,
}

/// The measured intervals, each from the first alert.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intervals {
    pub to_detect: Option<Duration>,
    pub to_propose: Option<Duration>,
    pub to_approve: Option<Duration>,
    pub to_mitigate: Option<Duration>,
    pub to_resolve: Option<Duration>,
}

impl KeyTimes {
    /// Read from a timeline: the first entry of each kind that marks a moment.
    pub fn of(timeline: &[TimelineEntry]) -> KeyTimes {
        let first = |kinds: &[TimelineKind]| {
            timeline
                .iter()
                .filter(|e| kinds.contains(&e.kind))
                .map(|e| e.at)
                .min()
        };
        KeyTimes {
            first_alert: first(&[TimelineKind::AlertFired]),
            detected: first(&[TimelineKind::Opened]),
            first_proposal: first(&[TimelineKind::Proposed]),
            first_approval: first(&[TimelineKind::Signed, TimelineKind::Approved]),
            mitigated: first(&[TimelineKind::Executed]),
            resolved: first(&[TimelineKind::Resolved]),
        }
    }

    /// Each interval from the first alert (from detection when no alert time is known); a
    /// moment earlier than the start (clock skew between sources) counts as zero.
    pub fn intervals(&self) -> Intervals {
        let start = self.first_alert.or(self.detected);
        let since = |moment: Option<DateTime<Utc>>| {
            let (start, moment) = (start?, moment?);
            Some((moment - start).max(Duration::zero()))
        };
        Intervals {
            to_detect: since(self.detected),
            to_propose: since(self.first_proposal),
            to_approve: since(self.first_approval),
            to_mitigate: since(self.mitigated),
            to_resolve: since(self.resolved),
        }
    }
}

/// One alert of the incident, as the postmortem lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertSummary {
    pub name: String,
    pub service: Option<String>,
    pub severity: String,
    pub count: i64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub resolved: bool,
}

/// What the analysis concluded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisSummary {
    pub brain: String,
    pub summary: String,
    pub root_cause: Option<String>,
    pub confidence: f64,
    /// Ranked root-cause candidates from the topology: `service (kind, depth n)`.
    pub root_causes: Vec<String>,
    /// Services in the blast radius: `service (kind, depth n)`.
    pub blast_radius: Vec<String>,
    /// How many runs the analysis took.
    pub runs: i32,
}

/// One signature on an action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignatureSummary {
    pub signer: String,
    pub role: String,
    pub decision: String,
    pub at: DateTime<Utc>,
    pub comment: Option<String>,
}

/// One action proposed for the incident and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionSummary {
    pub approval_id: i32,
    /// `kind target`.
    pub action: String,
    pub namespace: Option<String>,
    pub requested_by: String,
    pub risk: String,
    pub status: String,
    pub dry_run_passed: bool,
    pub signatures: Vec<SignatureSummary>,
    /// Execution status and output (pseudonymised), when it ran.
    pub execution: Option<(String, String)>,
    pub void_reason: Option<String>,
}

/// A past incident the knowledge base held when this one was analysed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnownIncident {
    pub incident_id: i32,
    pub title: String,
    pub action: Option<String>,
    pub outcome: Option<String>,
}

/// Everything a postmortem is written from. Every text is pseudonymised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostmortemFacts {
    pub incident_id: i32,
    pub title: String,
    pub severity: String,
    pub status: String,
    pub service: Option<String>,
    pub alerts: Vec<AlertSummary>,
    pub analysis: Option<AnalysisSummary>,
    pub actions: Vec<ActionSummary>,
    pub known: Vec<KnownIncident>,
    /// Ordered (see [`sort_timeline`]).
    pub timeline: Vec<TimelineEntry>,
    /// A summary paragraph written by an LLM brain from these facts, if one was asked.
    pub written_summary: Option<String>,
    /// Incidents merged into this one.
    pub merged_from: Vec<i32>,
}

/// The longest timeline a postmortem lists in full; longer ones keep their first and last
/// entries and say how many were left out (the full list is in the API).
pub const TIMELINE_LIMIT: usize = 200;

/// `1h 02m 03s`, `4m 05s`, `6s`.
pub fn human(duration: Duration) -> String {
    let total = duration.num_seconds().max(0);
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s:02}s"),
        _ => format!("{h}h {m:02}m {s:02}s"),
    }
}

fn stamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Keeps a table cell on one line and its pipes literal.
fn cell(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    one_line.replace('|', "\\|")
}

/// At most `limit` characters, with an ellipsis when cut.
pub fn excerpt(text: &str, limit: usize) -> String {
    let mut out: String = text.chars().take(limit).collect();
    if text.chars().count() > limit {
        out.push('…');
    }
    out
}

/// The summary paragraph from the facts alone.
fn summary_of(facts: &PostmortemFacts, times: &KeyTimes) -> String {
    let mut text = format!(
        "A {} incident{} opened",
        facts.severity.to_ascii_lowercase(),
        facts
            .service
            .as_ref()
            .map(|s| format!(" on `{s}`"))
            .unwrap_or_default()
    );
    if let Some(at) = times.detected {
        let _ = write!(text, " at {}", stamp(at));
    }
    let alerts: i64 = facts.alerts.iter().map(|a| a.count).sum();
    let _ = write!(
        text,
        " from {} alert{} ({} firing{} in all).",
        facts.alerts.len(),
        if facts.alerts.len() == 1 { "" } else { "s" },
        alerts,
        if alerts == 1 { "" } else { "s" }
    );
    match facts.analysis.as_ref().and_then(|a| a.root_cause.as_ref()) {
        Some(cause) => {
            let _ = write!(text, " The analysis named `{cause}` as the root cause.");
        }
        None => text.push_str(" The analysis named no root cause."),
    }
    let worked: Vec<&ActionSummary> = facts
        .actions
        .iter()
        .filter(|a| a.status == "EXECUTED")
        .collect();
    if worked.is_empty() {
        text.push_str(" No action was executed.");
    } else {
        let list: Vec<String> = worked.iter().map(|a| format!("`{}`", a.action)).collect();
        let _ = write!(text, " Executed: {}.", list.join(", "));
    }
    let intervals = times.intervals();
    match (times.resolved, intervals.to_resolve) {
        (Some(_), Some(took)) => {
            let _ = write!(text, " It resolved {} after the first alert.", human(took));
        }
        (Some(at), None) => {
            let _ = write!(text, " It resolved at {}.", stamp(at));
        }
        _ => {
            let _ = write!(
                text,
                " It is not resolved (status {}).",
                facts.status.to_ascii_uppercase()
            );
        }
    }
    text
}

/// Follow-ups that the facts call for, each with the fact that calls for it.
fn follow_ups(facts: &PostmortemFacts) -> Vec<String> {
    let mut out = Vec::new();
    for action in &facts.actions {
        match action.status.as_str() {
            "FAILED" => out.push(format!(
                "Find out why `{}` failed (approval {}) and fix the action or its playbook.",
                action.action, action.approval_id
            )),
            "VOIDED" => out.push(format!(
                "`{}` was voided because the state moved before it ran ({}): check what changed \
                 the target while the approval was pending.",
                action.action,
                action
                    .void_reason
                    .as_deref()
                    .unwrap_or("no reason recorded")
            )),
            "EXPIRED" => out.push(format!(
                "`{}` expired unsigned: check that its signers were notified and reachable.",
                action.action
            )),
            _ => {}
        }
        if !action.dry_run_passed && action.status != "SUPERSEDED" {
            out.push(format!(
                "`{}` failed its dry-run when proposed: review the check that refused it.",
                action.action
            ));
        }
    }
    match &facts.analysis {
        None => out.push("No analysis ran: check the analysis worker and the brain.".into()),
        Some(a) if a.root_cause.is_none() => out.push(
            "The analysis named no root cause: add the service to the topology or a playbook \
             for these alerts."
                .into(),
        ),
        Some(a) if a.confidence < 0.5 => out.push(format!(
            "The analysis was unsure ({:.0}% confidence): confirm the root cause `{}`.",
            a.confidence * 100.0,
            a.root_cause.as_deref().unwrap_or_default()
        )),
        _ => {}
    }
    if facts.actions.is_empty() {
        out.push(
            "No action was proposed: if people fixed it by hand, write the fix down as a \
             playbook so the next one is proposed."
                .into(),
        );
    }
    for alert in facts.alerts.iter().filter(|a| a.count >= 10) {
        out.push(format!(
            "`{}` fired {} times: check its threshold and `for:` duration.",
            alert.name, alert.count
        ));
    }
    if facts.known.is_empty() {
        out.push(
            "The knowledge base knew nothing like this: this postmortem is now its first entry."
                .into(),
        );
    }
    out
}

/// The postmortem in Markdown: summary, impact, detection and key times, timeline, root cause
/// and its evidence, what was done and by whom, what the knowledge base knew, follow-ups.
pub fn render(facts: &PostmortemFacts) -> String {
    let times = KeyTimes::of(&facts.timeline);
    let intervals = times.intervals();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Postmortem: {} (incident {})\n",
        cell(&facts.title),
        facts.incident_id
    );

    md.push_str("## Summary\n\n");
    match &facts.written_summary {
        Some(written) => {
            let _ = writeln!(md, "{}\n", written.trim());
            let _ = writeln!(md, "_From the record:_ {}\n", summary_of(facts, &times));
        }
        None => {
            let _ = writeln!(md, "{}\n", summary_of(facts, &times));
        }
    }

    md.push_str("## Impact\n\n");
    let _ = writeln!(
        md,
        "- Severity: {}\n- Status: {}",
        facts.severity, facts.status
    );
    if let Some(service) = &facts.service {
        let _ = writeln!(md, "- Service: `{service}`");
    }
    let duration = match (times.first_alert.or(times.detected), times.resolved) {
        (Some(start), Some(end)) => human((end - start).max(Duration::zero())),
        _ => "ongoing".to_owned(),
    };
    let _ = writeln!(md, "- Duration: {duration}");
    match facts.analysis.as_ref().map(|a| &a.blast_radius) {
        Some(radius) if !radius.is_empty() => {
            let _ = writeln!(md, "- Blast radius: {}", radius.join(", "));
        }
        _ => md.push_str("- Blast radius: none known (no dependent service in the topology)\n"),
    }
    let mut workloads: Vec<String> = facts
        .actions
        .iter()
        .map(|a| match &a.namespace {
            Some(ns) => format!("`{}` in `{ns}`", a.action),
            None => format!("`{}`", a.action),
        })
        .collect();
    workloads.dedup();
    if workloads.is_empty() {
        md.push_str("- Workloads acted on: none\n");
    } else {
        let _ = writeln!(md, "- Workloads acted on: {}", workloads.join(", "));
    }
    if !facts.merged_from.is_empty() {
        let ids: Vec<String> = facts.merged_from.iter().map(|i| i.to_string()).collect();
        let _ = writeln!(md, "- Merged incidents: {}", ids.join(", "));
    }
    md.push('\n');

    md.push_str("## Detection and key times\n\n");
    md.push_str("| Moment | At | From the first alert |\n|---|---|---|\n");
    let rows = [
        ("First alert", times.first_alert, Some(Duration::zero())),
        (
            "Detected (incident opened)",
            times.detected,
            intervals.to_detect,
        ),
        ("First proposal", times.first_proposal, intervals.to_propose),
        ("First approval", times.first_approval, intervals.to_approve),
        ("Mitigated", times.mitigated, intervals.to_mitigate),
        ("Resolved", times.resolved, intervals.to_resolve),
    ];
    for (name, at, took) in rows {
        let _ = writeln!(
            md,
            "| {name} | {} | {} |",
            at.map(stamp).unwrap_or_else(|| "—".into()),
            match (at, took) {
                (Some(_), Some(took)) => human(took),
                _ => "—".into(),
            }
        );
    }
    md.push('\n');
    if !facts.alerts.is_empty() {
        md.push_str("| Alert | Service | Severity | Fired | First seen | Last seen | Status |\n");
        md.push_str("|---|---|---|---|---|---|---|\n");
        for a in &facts.alerts {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} |",
                cell(&a.name),
                cell(a.service.as_deref().unwrap_or("—")),
                a.severity,
                a.count,
                stamp(a.first_seen),
                stamp(a.last_seen),
                if a.resolved { "resolved" } else { "firing" }
            );
        }
        md.push('\n');
    }

    md.push_str("## Timeline\n\n");
    if facts.timeline.is_empty() {
        md.push_str("Nothing recorded.\n\n");
    } else {
        md.push_str("| At | What | Who | Detail |\n|---|---|---|---|\n");
        let total = facts.timeline.len();
        let (head, tail) = if total > TIMELINE_LIMIT {
            (TIMELINE_LIMIT / 2, TIMELINE_LIMIT / 2)
        } else {
            (total, 0)
        };
        let line = |md: &mut String, e: &TimelineEntry| {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                stamp(e.at),
                e.kind.as_str(),
                cell(&e.actor),
                cell(&excerpt(&e.text, 300))
            );
        };
        for e in &facts.timeline[..head] {
            line(&mut md, e);
        }
        if tail > 0 {
            let _ = writeln!(
                md,
                "| … | | | {} entries left out; the API lists them all |",
                total - head - tail
            );
            for e in &facts.timeline[total - tail..] {
                line(&mut md, e);
            }
        }
        md.push('\n');
    }

    md.push_str("## Root cause and evidence\n\n");
    match &facts.analysis {
        None => md.push_str("No analysis ran.\n\n"),
        Some(a) => {
            let _ = writeln!(
                md,
                "- Root cause: {}\n- Brain: {} ({} run{}), confidence {:.0}%\n- Conclusion: {}",
                a.root_cause
                    .as_ref()
                    .map(|c| format!("`{c}`"))
                    .unwrap_or_else(|| "none named".into()),
                a.brain,
                a.runs,
                if a.runs == 1 { "" } else { "s" },
                a.confidence * 100.0,
                a.summary.trim()
            );
            if a.root_causes.is_empty() {
                md.push_str("- Topology: no alerting dependency below the service\n");
            } else {
                let _ = writeln!(
                    md,
                    "- Topology, likeliest first: {}",
                    a.root_causes.join(", ")
                );
            }
            let notes: Vec<&TimelineEntry> = facts
                .timeline
                .iter()
                .filter(|e| matches!(e.kind, TimelineKind::Correlated | TimelineKind::Merged))
                .collect();
            if !notes.is_empty() {
                md.push_str("- Correlation:\n");
                for e in notes.iter().take(20) {
                    let _ = writeln!(md, "  - {}", excerpt(e.text.trim(), 300));
                }
                if notes.len() > 20 {
                    let _ = writeln!(md, "  - … and {} more", notes.len() - 20);
                }
            }
            md.push('\n');
        }
    }

    md.push_str("## What was done, and by whom\n\n");
    if facts.actions.is_empty() {
        md.push_str("No action was proposed.\n\n");
    }
    for a in &facts.actions {
        let _ = writeln!(
            md,
            "- **`{}`** (approval {}): {} risk, proposed by {}, dry-run {}, ended {}.",
            a.action,
            a.approval_id,
            a.risk,
            a.requested_by,
            if a.dry_run_passed { "passed" } else { "failed" },
            a.status
        );
        for s in &a.signatures {
            let _ = writeln!(
                md,
                "  - {} by {} ({}) at {}{}",
                s.decision.to_ascii_lowercase(),
                s.signer,
                s.role,
                stamp(s.at),
                s.comment
                    .as_ref()
                    .map(|c| format!(": \"{}\"", excerpt(c, 200)))
                    .unwrap_or_default()
            );
        }
        if let Some(reason) = &a.void_reason {
            let _ = writeln!(md, "  - voided: {}", excerpt(reason, 300));
        }
        if let Some((status, output)) = &a.execution {
            let _ = writeln!(
                md,
                "  - execution {}: {}",
                status.to_ascii_lowercase(),
                if output.trim().is_empty() {
                    "no output".to_owned()
                } else {
                    format!("`{}`", cell(&excerpt(output.trim(), 300)).replace('`', "'"))
                }
            );
        }
    }
    if !facts.actions.is_empty() {
        md.push('\n');
    }

    md.push_str("## What the knowledge base already knew\n\n");
    if facts.known.is_empty() {
        md.push_str("Nothing similar.\n\n");
    } else {
        for k in &facts.known {
            let _ = writeln!(
                md,
                "- Incident {}: {}{}",
                k.incident_id,
                k.title,
                match (&k.action, &k.outcome) {
                    (Some(action), Some(outcome)) =>
                        format!(" — `{action}` {}", outcome.to_ascii_lowercase()),
                    (Some(action), None) => format!(" — `{action}`"),
                    _ => String::new(),
                }
            );
        }
        md.push('\n');
    }

    md.push_str("## Follow-ups\n\n");
    let todo = follow_ups(facts);
    if todo.is_empty() {
        md.push_str("None called for by the record.\n");
    }
    for item in todo {
        let _ = writeln!(md, "- [ ] {item}");
    }
    md
}

#[cfg(test)]
mod tests;
