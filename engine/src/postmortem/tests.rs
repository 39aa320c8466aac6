use chrono::TimeZone;

use super::*;

fn at(minute: u32, second: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 3, minute, second).unwrap()
}

fn entry(minute: u32, second: u32, kind: TimelineKind, actor: &str, text: &str) -> TimelineEntry {
    TimelineEntry {
        at: at(minute, second),
        kind,
        actor: actor.into(),
        text: text.into(),
    }
}

fn resolved_incident() -> PostmortemFacts {
    let mut timeline = vec![
        entry(
            20,
            0,
            TimelineKind::Resolved,
            "system",
            "every alert resolved",
        ),
        entry(
            0,
            0,
            TimelineKind::AlertFired,
            "ALERTMANAGER",
            "PostgresDown on [SERVICE_1]",
        ),
        entry(
            0,
            5,
            TimelineKind::Opened,
            "system",
            "opened by PostgresDown",
        ),
        entry(1, 0, TimelineKind::Analysed, "system", "rules: restart it"),
        entry(
            1,
            0,
            TimelineKind::Proposed,
            "system",
            "rollback_deployment [SERVICE_1]",
        ),
        entry(4, 30, TimelineKind::Signed, "alice", "approve as SRE"),
        entry(6, 0, TimelineKind::Approved, "bob", "approve as DEVOPS"),
        entry(6, 2, TimelineKind::Executing, "system", "re-check passed"),
        entry(6, 10, TimelineKind::Executed, "system", "rolled back"),
        entry(
            0,
            30,
            TimelineKind::Correlated,
            "system",
            "[SERVICE_2] joined: it depends on [SERVICE_1]",
        ),
    ];
    sort_timeline(&mut timeline);
    PostmortemFacts {
        incident_id: 7,
        title: "PostgresDown on [SERVICE_1]".into(),
        severity: "CRITICAL".into(),
        status: "RESOLVED".into(),
        service: Some("[SERVICE_1]".into()),
        alerts: vec![AlertSummary {
            name: "PostgresDown".into(),
            service: Some("[SERVICE_1]".into()),
            severity: "CRITICAL".into(),
            count: 12,
            first_seen: at(0, 0),
            last_seen: at(15, 0),
            resolved: true,
        }],
        analysis: Some(AnalysisSummary {
            brain: "rules".into(),
            summary: "The database is down.".into(),
            root_cause: Some("[SERVICE_1]".into()),
            confidence: 0.9,
            root_causes: vec!["[SERVICE_1] (DATABASE, depth 1)".into()],
            blast_radius: vec!["[SERVICE_2] (SERVICE, depth 1)".into()],
            runs: 2,
        }),
        actions: vec![ActionSummary {
            approval_id: 3,
            action: "rollback_deployment [SERVICE_1]".into(),
            namespace: Some("prod".into()),
            requested_by: "system".into(),
            risk: "HIGH".into(),
            status: "EXECUTED".into(),
            dry_run_passed: true,
            signatures: vec![SignatureSummary {
                signer: "alice".into(),
                role: "SRE".into(),
                decision: "APPROVE".into(),
                at: at(4, 30),
                comment: Some("looks | right".into()),
            }],
            execution: Some(("SUCCEEDED".into(), "rolled back to revision 4".into())),
            void_reason: None,
        }],
        known: vec![],
        timeline,
        written_summary: None,
        merged_from: vec![9],
    }
}

#[test]
fn the_timeline_sorts_by_time_then_by_the_loops_order() {
    let facts = resolved_incident();
    let kinds: Vec<TimelineKind> = facts.timeline.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            TimelineKind::AlertFired,
            TimelineKind::Opened,
            TimelineKind::Correlated,
            TimelineKind::Analysed,
            TimelineKind::Proposed,
            TimelineKind::Signed,
            TimelineKind::Approved,
            TimelineKind::Executing,
            TimelineKind::Executed,
            TimelineKind::Resolved,
        ]
    );
}

#[test]
fn key_times_are_the_first_of_each_moment_and_intervals_run_from_the_first_alert() {
    let times = KeyTimes::of(&resolved_incident().timeline);
    assert_eq!(times.first_alert, Some(at(0, 0)));
    assert_eq!(times.first_approval, Some(at(4, 30)), "the first signature");
    let i = times.intervals();
    assert_eq!(i.to_detect, Some(Duration::seconds(5)));
    assert_eq!(i.to_propose, Some(Duration::seconds(60)));
    assert_eq!(i.to_approve, Some(Duration::seconds(270)));
    assert_eq!(i.to_mitigate, Some(Duration::seconds(370)));
    assert_eq!(i.to_resolve, Some(Duration::seconds(1200)));
}

#[test]
fn an_unfinished_incident_has_no_resolution_and_a_skewed_clock_counts_as_zero() {
    let timeline = vec![
        entry(1, 0, TimelineKind::AlertFired, "GRAFANA", "x"),
        entry(0, 59, TimelineKind::Opened, "system", "x"),
    ];
    let i = KeyTimes::of(&timeline).intervals();
    assert_eq!(i.to_detect, Some(Duration::zero()));
    assert_eq!(i.to_resolve, None);
    assert_eq!(i.to_propose, None);
}

#[test]
fn every_section_is_filled_from_the_facts() {
    let md = render(&resolved_incident());
    for section in [
        "# Postmortem: PostgresDown on [SERVICE_1] (incident 7)",
        "## Summary",
        "## Impact",
        "## Detection and key times",
        "## Timeline",
        "## Root cause and evidence",
        "## What was done, and by whom",
        "## What the knowledge base already knew",
        "## Follow-ups",
    ] {
        assert!(md.contains(section), "missing {section}:\n{md}");
    }
    assert!(
        md.contains("It resolved 20m 00s after the first alert."),
        "{md}"
    );
    assert!(md.contains("- Duration: 20m 00s"), "{md}");
    assert!(
        md.contains("- Blast radius: [SERVICE_2] (SERVICE, depth 1)"),
        "{md}"
    );
    assert!(
        md.contains("| First approval | 2026-03-01 03:04:30 UTC | 4m 30s |"),
        "{md}"
    );
    assert!(
        md.contains("| Mitigated | 2026-03-01 03:06:10 UTC | 6m 10s |"),
        "{md}"
    );
    assert!(
        md.contains("approve by alice (SRE) at 2026-03-01 03:04:30 UTC"),
        "{md}"
    );
    assert!(
        md.contains("execution succeeded: `rolled back to revision 4`"),
        "{md}"
    );
    assert!(
        md.contains("[SERVICE_2] joined: it depends on [SERVICE_1]"),
        "{md}"
    );
    assert!(md.contains("- Merged incidents: 9"), "{md}");
    assert!(md.contains("`PostgresDown` fired 12 times"), "{md}");
    assert!(
        md.contains("this postmortem is now its first entry"),
        "{md}"
    );
    assert!(
        md.contains("| 2026-03-01 03:00:00 UTC | ALERT_FIRED | ALERTMANAGER |"),
        "{md}"
    );
}

#[test]
fn table_cells_stay_on_one_line_with_literal_pipes() {
    let mut facts = resolved_incident();
    facts.timeline[0].text = "line one\nline | two".into();
    let md = render(&facts);
    assert!(md.contains("line one line \\| two"), "{md}");
}

#[test]
fn a_long_timeline_keeps_its_ends_and_says_how_many_were_left_out() {
    let mut facts = resolved_incident();
    let repeats: Vec<TimelineEntry> = (0..500)
        .map(|i| {
            entry(
                10,
                0,
                TimelineKind::Notified,
                "system",
                &format!("slack #{i:03}"),
            )
        })
        .collect();
    facts.timeline.extend(repeats);
    sort_timeline(&mut facts.timeline);
    let md = render(&facts);
    assert!(md.contains("310 entries left out"), "{md}");
    assert!(md.contains("| RESOLVED |"), "the last entry stays");
    assert!(md.contains("| ALERT_FIRED |"), "the first entry stays");
}

#[test]
fn a_written_summary_leads_and_the_records_summary_follows() {
    let mut facts = resolved_incident();
    facts.written_summary = Some("The primary database ran out of connections.".into());
    let md = render(&facts);
    let written = md.find("The primary database ran out").unwrap();
    let record = md.find("_From the record:_").unwrap();
    assert!(written < record);
}

#[test]
fn an_incident_without_analysis_or_actions_says_so_and_asks_for_them() {
    let facts = PostmortemFacts {
        analysis: None,
        actions: vec![],
        timeline: vec![entry(0, 0, TimelineKind::Opened, "system", "opened")],
        status: "OPEN".into(),
        ..resolved_incident()
    };
    let md = render(&facts);
    assert!(md.contains("No analysis ran.\n"), "{md}");
    assert!(md.contains("No action was proposed.\n"), "{md}");
    assert!(md.contains("It is not resolved (status OPEN)."), "{md}");
    assert!(md.contains("- Duration: ongoing"), "{md}");
    assert!(md.contains("- [ ] No analysis ran"), "{md}");
}

#[test]
fn failed_voided_and_expired_actions_each_ask_a_follow_up() {
    let mut facts = resolved_incident();
    let base = facts.actions[0].clone();
    facts.actions = ["FAILED", "VOIDED", "EXPIRED"]
        .into_iter()
        .enumerate()
        .map(|(i, status)| ActionSummary {
            approval_id: i as i32,
            status: status.into(),
            void_reason: (status == "VOIDED").then(|| "fingerprint changed".into()),
            ..base.clone()
        })
        .collect();
    let md = render(&facts);
    assert!(md.contains("Find out why"), "{md}");
    assert!(md.contains("voided because the state moved before it ran (fingerprint changed)"));
    assert!(md.contains("expired unsigned"), "{md}");
    assert!(md.contains("No action was executed."), "{md}");
}

#[test]
fn rendering_is_deterministic() {
    assert_eq!(render(&resolved_incident()), render(&resolved_incident()));
}

#[test]
fn durations_read_as_people_write_them() {
    assert_eq!(human(Duration::seconds(6)), "6s");
    assert_eq!(human(Duration::seconds(245)), "4m 05s");
    assert_eq!(human(Duration::seconds(3723)), "1h 02m 03s");
    assert_eq!(human(Duration::seconds(-5)), "0s");
}

#[test]
fn every_approval_audit_action_has_its_kind() {
    for (action, kind) in [
        ("approval.proposed", TimelineKind::Proposed),
        ("approval.voided", TimelineKind::Voided),
        ("approval.superseded", TimelineKind::Superseded),
        ("approval.failed", TimelineKind::Failed),
    ] {
        assert_eq!(TimelineKind::of_approval_audit(action), Some(kind));
    }
    assert_eq!(TimelineKind::of_approval_audit("user.signed_in"), None);
    let names: std::collections::HashSet<&str> =
        TimelineKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(names.len(), TimelineKind::ALL.len());
}
