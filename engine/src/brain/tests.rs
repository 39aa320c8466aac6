use super::*;

fn alert(name: &str, description: &str) -> AlertFacts {
    AlertFacts {
        name: name.into(),
        severity: "CRITICAL".into(),
        service: Some("frontend".into()),
        description: Some(description.into()),
        count: 1,
    }
}

fn fact(service: &str, kind: ServiceKind, depth: u32) -> GraphFact {
    GraphFact {
        service: service.into(),
        kind,
        depth,
    }
}

fn investigation(alerts: Vec<AlertFacts>, causes: Vec<GraphFact>) -> Investigation {
    Investigation {
        incident_title: "frontend 5xx rate > 15%".into(),
        service: Some("frontend".into()),
        service_kind: Some(ServiceKind::Service),
        alerts,
        root_causes: causes,
        blast_radius: vec![fact("ingress", ServiceKind::Ingress, 1)],
        history: Vec::new(),
        workloads: None,
        diagnostics: Vec::new(),
    }
}

/// (alerts, root causes) → (first action, target, confidence)
#[test]
fn playbook_table() {
    let db = || vec![fact("postgres-db", ServiceKind::Database, 2)];
    let cases = [
        (
            vec![alert("ConnectionsExhausted", "pool at 100%")],
            db(),
            ("restart_deployment", "postgres-db", 0.75),
        ),
        (
            vec![alert("PodCrashLooping", "CrashLoopBackOff after deploy")],
            vec![],
            ("rollback_deployment", "frontend", 0.8),
        ),
        (
            vec![alert("OOMKilled", "container out of memory")],
            vec![],
            ("scale_deployment", "frontend", 0.7),
        ),
        (
            vec![alert("QueueLag", "consumer lag 10k")],
            vec![fact("order-queue", ServiceKind::Queue, 2)],
            ("scale_deployment", "ingress", 0.65),
        ),
        (
            vec![alert("HighErrorRate", "5xx")],
            vec![fact("redis-cache", ServiceKind::Cache, 2)],
            ("restart_deployment", "redis-cache", 0.55),
        ),
        (
            vec![alert("HighErrorRate", "5xx")],
            vec![],
            ("run_diagnostics", "frontend", 0.3),
        ),
    ];
    for (alerts, causes, (kind, target, confidence)) in cases {
        let (steps, proposal) = RulesBrain.reason(&investigation(alerts.clone(), causes));
        proposal.validate().unwrap();
        assert_eq!(proposal.actions[0].kind, kind, "{alerts:?}");
        assert_eq!(proposal.actions[0].target, target, "{alerts:?}");
        assert_eq!(proposal.confidence, confidence);
        assert_eq!(steps.first().unwrap().kind, ThinkingKind::Thought);
        assert_eq!(steps.last().unwrap().kind, ThinkingKind::Conclusion);
        assert!(steps.iter().any(|s| s.kind == ThinkingKind::ToolCall));
    }
}

#[test]
fn the_seeds_scenario_narrates_root_cause_and_blast_radius() {
    let input = investigation(
        vec![
            alert("frontend 5xx rate > 15%", "User [IP_1] saw 5xx"),
            alert("ConnectionsExhausted", "pool"),
        ],
        vec![fact("postgres-db", ServiceKind::Database, 2)],
    );
    let (steps, proposal) = RulesBrain.reason(&input);
    let text: Vec<String> = steps
        .iter()
        .map(|s| format!("{}: {}", s.kind.as_str(), s.text))
        .collect();
    assert_eq!(
        text,
        [
            "THOUGHT: Incident \"frontend 5xx rate > 15%\": 2 alert(s) on frontend, worst severity CRITICAL.",
            "TOOL_CALL: rootCauses(service: \"frontend\", maxDepth: 3)",
            "OBSERVATION: Unhealthy dependencies: postgres-db (Database, depth 2).",
            "TOOL_CALL: blastRadius(service: \"frontend\", maxDepth: 3)",
            "OBSERVATION: 1 service(s) break with it: ingress.",
            "THOUGHT: Playbook: postgres-db is a database out of connections, with no pooler in front of it.",
            "CONCLUSION: postgres-db is the likeliest root cause of \"frontend 5xx rate > 15%\"; 1 service(s) in the blast radius. Proposed: restart_deployment postgres-db (confidence 0.75).",
        ]
    );
    assert_eq!(proposal.root_cause.as_deref(), Some("postgres-db"));
    // Deterministic: the same input, the same words.
    assert_eq!(RulesBrain.reason(&input), (steps, proposal));
}

#[test]
fn invalid_proposals_are_refused_with_the_reason() {
    let base = Proposal {
        summary: "s".into(),
        root_cause: None,
        actions: vec![ProposedAction {
            kind: "restart_deployment".into(),
            target: "x".into(),
            namespace: None,
            params: serde_json::json!({}),
            rationale: "r".into(),
        }],
        confidence: 0.5,
    };
    base.validate().unwrap();
    let mut p = base.clone();
    p.confidence = 1.5;
    assert!(
        p.validate()
            .unwrap_err()
            .to_string()
            .contains("confidence 1.5")
    );
    let mut p = base.clone();
    p.actions[0].kind = "rm_rf".into();
    assert!(
        p.validate()
            .unwrap_err()
            .to_string()
            .contains("`rm_rf` is not a known action")
    );
    let mut p = base.clone();
    p.actions[0].params = serde_json::json!([1]);
    assert!(p.validate().is_err());
    let mut p = base;
    p.summary = " ".into();
    assert!(p.validate().is_err());
}

#[test]
fn the_schema_matches_what_is_accepted() {
    let schema: serde_json::Value = serde_json::from_str(PROPOSAL_SCHEMA).unwrap();
    let kinds: Vec<&str> = schema["properties"]["actions"]["items"]["properties"]["kind"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(kinds, ACTION_KINDS);
    // Fields outside the schema are refused.
    let extra =
        r#"{"summary": "s", "root_cause": null, "confidence": 0.5, "actions": [], "mood": "sad"}"#;
    assert!(serde_json::from_str::<Proposal>(extra).is_err());
}

fn past(id: i32, action: &str, worked: bool) -> PastIncident {
    PastIncident {
        incident_id: id,
        title: format!("postgres-db down ({id})"),
        root_cause: Some("postgres-db".into()),
        action: Some(action.into()),
        worked: Some(worked),
    }
}

fn flywheel_case(history: Vec<PastIncident>) -> (Vec<ThinkingStep>, Proposal) {
    let mut input = investigation(
        vec![alert("PostgresDown", "postgres-db stopped answering")],
        vec![fact("postgres-db", ServiceKind::Database, 1)],
    );
    input.history = history;
    RulesBrain.reason(&input)
}

#[test]
fn a_fix_that_worked_on_a_similar_incident_is_proposed_first_and_cited() {
    // Without history the playbook restarts the database itself.
    let (_, plain) = flywheel_case(Vec::new());
    assert_eq!(plain.actions[0].kind, "restart_deployment");
    assert_eq!(plain.actions[0].target, "postgres-db");

    let (steps, learned) = flywheel_case(vec![
        past(41, "rollback_deployment postgres-db", true),
        past(17, "restart_deployment postgres-db", false),
    ]);
    assert_eq!(
        (
            learned.actions[0].kind.as_str(),
            learned.actions[0].target.as_str()
        ),
        ("rollback_deployment", "postgres-db")
    );
    assert!(learned.confidence >= 0.9);
    let said: Vec<&str> = steps.iter().map(|s| s.text.as_str()).collect();
    assert!(
        said.contains(&"Learned from incident #41: rollback_deployment postgres-db worked there; proposing it first."),
        "{said:#?}"
    );
    assert!(
        said.iter()
            .any(|s| s.starts_with("Similar past incidents: #41 "))
    );
}

#[test]
fn a_fix_that_failed_on_a_similar_incident_is_not_proposed_first() {
    let (steps, learned) = flywheel_case(vec![past(17, "restart_deployment postgres-db", false)]);
    assert_ne!(
        (
            learned.actions[0].kind.as_str(),
            learned.actions[0].target.as_str()
        ),
        ("restart_deployment", "postgres-db"),
        "{learned:?}"
    );
    assert_eq!(learned.actions[0].kind, "run_diagnostics");
    assert!(
        learned
            .actions
            .iter()
            .any(|a| a.kind == "restart_deployment"),
        "still offered, later"
    );
    assert!(steps.iter().any(|s| s.text
        == "Learned from incident #17: restart_deployment postgres-db failed there; not proposing it first."));
    // A later success on a more similar incident wins over the old failure.
    let (_, learned) = flywheel_case(vec![
        past(30, "restart_deployment postgres-db", true),
        past(17, "restart_deployment postgres-db", false),
    ]);
    assert_eq!(learned.actions[0].kind, "restart_deployment");
    // Scaling needs parameters of its own: it is not re-proposed blindly.
    let (_, learned) = flywheel_case(vec![past(5, "scale_deployment postgres-db", true)]);
    assert_eq!(learned.actions[0].kind, "restart_deployment");
}

fn workload(name: &str) -> WorkloadFact {
    WorkloadFact {
        name: name.into(),
        replicas: 3,
        ready: 3,
        revision: 2,
        can_roll_back: true,
        recent_rollout: false,
        restarts: 0,
        crash_looping: false,
    }
}

fn first_action(input: &Investigation) -> Option<(String, String)> {
    let (_, proposal) = RulesBrain.reason(input);
    proposal.validate().unwrap();
    proposal
        .actions
        .first()
        .map(|a| (a.kind.clone(), a.target.clone()))
}

fn pair(kind: &str, target: &str) -> Option<(String, String)> {
    Some((kind.into(), target.into()))
}

#[test]
fn a_database_out_of_connections_restarts_its_pooler_only_if_the_cluster_runs_one() {
    let mut input = investigation(
        vec![alert(
            "PostgresTooManyConnections",
            "FATAL: sorry, too many clients already",
        )],
        vec![fact("postgres-db", ServiceKind::Database, 1)],
    );
    input.workloads = Some(vec![workload("postgres-db"), workload("frontend")]);
    assert_eq!(
        first_action(&input),
        pair("restart_deployment", "postgres-db")
    );
    input
        .workloads
        .as_mut()
        .unwrap()
        .push(workload("postgres-db-pooler"));
    assert_eq!(
        first_action(&input),
        pair("restart_deployment", "postgres-db-pooler")
    );
    // A pooler the topology puts in front of it, by another name.
    input.workloads = Some(vec![workload("postgres-db"), workload("pgbouncer")]);
    input.blast_radius = vec![fact("pgbouncer", ServiceKind::Service, 1)];
    assert_eq!(
        first_action(&input),
        pair("restart_deployment", "pgbouncer")
    );
}

#[test]
fn a_crash_loop_rolls_back_only_after_a_recent_rollout_with_an_earlier_revision() {
    let crash = || {
        let mut input = investigation(
            vec![alert(
                "KubePodCrashLooping",
                "Back-off restarting failed container",
            )],
            vec![],
        );
        input.workloads = Some(vec![workload("frontend")]);
        input
    };
    let mut input = crash();
    input.workloads.as_mut().unwrap()[0].recent_rollout = true;
    assert_eq!(
        first_action(&input),
        pair("rollback_deployment", "frontend")
    );
    input.workloads.as_mut().unwrap()[0].can_roll_back = false;
    assert_eq!(first_action(&input), pair("run_diagnostics", "frontend"));
    // No rollout lately: not a rollback.
    assert_eq!(first_action(&crash()), pair("run_diagnostics", "frontend"));
}

#[test]
fn a_queue_backlog_scales_the_dependent_that_lags_not_the_publisher() {
    let mut input = investigation(
        vec![
            AlertFacts {
                service: Some("rabbitmq".into()),
                ..alert("RabbitmqQueueDepth", "queue depth 40k")
            },
            AlertFacts {
                service: Some("queue-master".into()),
                ..alert("ConsumerLag", "consumer lag 12 minutes")
            },
        ],
        vec![fact("rabbitmq", ServiceKind::Queue, 1)],
    );
    input.blast_radius = vec![
        fact("shipping", ServiceKind::Service, 1),
        fact("queue-master", ServiceKind::Service, 1),
    ];
    assert_eq!(
        first_action(&input),
        pair("scale_deployment", "queue-master")
    );
    // Without its alert, the one named like a consumer.
    input.alerts.truncate(1);
    assert_eq!(
        first_action(&input),
        pair("scale_deployment", "queue-master")
    );
}

#[test]
fn words_inside_other_words_do_not_pick_a_playbook() {
    // A Go nil-pointer panic mentions memory; a flag mentions lag.
    let input = investigation(
        vec![alert(
            "GoPanic",
            "panic: runtime error: invalid memory address or nil pointer dereference; feature flag on",
        )],
        vec![],
    );
    assert_eq!(first_action(&input), pair("run_diagnostics", "frontend"));
}

#[test]
fn diagnostics_already_read_are_not_proposed_again_and_can_pick_the_playbook() {
    let mut input = investigation(vec![alert("HighErrorRate", "5xx")], vec![]);
    input.diagnostics = vec![DiagnosticsFact {
        target: "frontend".into(),
        output: "deployments/frontend: 3/3 ready, revision 2".into(),
    }];
    let (steps, proposal) = RulesBrain.reason(&input);
    assert!(proposal.actions.is_empty(), "{proposal:?}");
    assert!(
        steps
            .last()
            .unwrap()
            .text
            .contains("Proposed: no action (the diagnostics of frontend were read"),
        "{steps:?}"
    );
    // What they read decides when it names a failure.
    input.diagnostics[0].output = "pods/frontend-x: OOMKilled, 7 restarts".into();
    assert_eq!(first_action(&input), pair("scale_deployment", "frontend"));
}

#[test]
fn an_action_on_a_workload_the_cluster_lacks_is_not_proposed() {
    let mut input = investigation(
        vec![alert("HighErrorRate", "5xx")],
        vec![fact("redis-cache", ServiceKind::Cache, 1)],
    );
    input.workloads = Some(vec![workload("frontend")]);
    let (steps, proposal) = RulesBrain.reason(&input);
    assert!(proposal.actions.is_empty());
    assert!(
        steps
            .iter()
            .any(|s| s.text.contains("the cluster has no workload redis-cache")),
        "{steps:?}"
    );
}

#[test]
fn memory_named_with_how_full_it_is_is_memory_pressure() {
    let input = investigation(
        vec![alert(
            "ContainerMemoryNearLimit",
            "memory working set at 93% of the limit for 20m",
        )],
        vec![],
    );
    assert_eq!(first_action(&input), pair("scale_deployment", "frontend"));
}

#[test]
fn any_brains_actions_on_missing_workloads_are_left_out() {
    let mut input = investigation(vec![alert("HighErrorRate", "5xx")], vec![]);
    input.workloads = Some(vec![workload("frontend")]);
    let proposal = Proposal {
        summary: "an LLM's answer".into(),
        root_cause: Some("frontend".into()),
        actions: vec![
            action(
                "restart_deployment",
                "frontend-pooler",
                serde_json::json!({}),
                "x",
            ),
            action("delete_pod", "frontend-abcde", serde_json::json!({}), "x"),
            action(
                "rollback_deployment",
                "frontend",
                serde_json::json!({}),
                "x",
            ),
        ],
        confidence: 0.5,
    };
    let (kept, dropped) = proposal.runnable(&input);
    let names = |a: &[ProposedAction]| -> Vec<String> {
        a.iter()
            .map(|a| format!("{} {}", a.kind, a.target))
            .collect()
    };
    assert_eq!(
        names(&kept.actions),
        ["delete_pod frontend-abcde", "rollback_deployment frontend"]
    );
    assert_eq!(names(&dropped), ["restart_deployment frontend-pooler"]);
    // Without a cluster view nothing is left out.
    input.workloads = None;
    let (kept, dropped) = Proposal {
        actions: vec![action(
            "restart_deployment",
            "x",
            serde_json::json!({}),
            "x",
        )],
        ..kept
    }
    .runnable(&input);
    assert_eq!((kept.actions.len(), dropped.len()), (1, 0));
}
