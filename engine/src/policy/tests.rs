use super::*;
use Decision::*;
use RiskLevel::*;
use Role::*;

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-25T03:00:00Z")
        .unwrap()
        .into()
}

fn request(kind: &str, namespace: Option<&str>) -> ActionRequest {
    ActionRequest {
        kind: kind.into(),
        target: "frontend".into(),
        namespace: namespace.map(str::to_owned),
        params: serde_json::json!({}),
        labels: BTreeMap::new(),
        requested_by: "requester".into(),
    }
}

/// An approval at exactly `risk` (trust 0, no raising namespace).
fn approval_at(risk: RiskLevel) -> Approval {
    let kind = match risk {
        Low => "run_diagnostics",
        Medium => "restart_deployment",
        High => "rollback_deployment",
        Critical => "delete_namespace",
    };
    let a = Approval::new(
        request(kind, None),
        &PolicyTable::default(),
        0,
        t0(),
        Duration::minutes(60),
    );
    assert_eq!(a.effective_risk, risk);
    a
}

#[test]
fn default_table_and_what_raises_it() {
    let policy = PolicyTable::default();
    for (kind, ns, expect) in [
        ("run_diagnostics", None, Low),
        ("restart_deployment", None, Medium),
        ("scale_deployment", Some("staging"), Medium),
        ("rollback_deployment", None, High),
        ("delete_pvc", None, High),
        ("drain_node", None, High),
        ("delete_namespace", None, Critical),
        ("drop_table", None, Critical),
        ("something_new", None, High),
        // A read-only action stays LOW everywhere…
        ("run_diagnostics", Some("production"), Low),
        // …production raises a changing one one level, but never to CRITICAL…
        ("restart_deployment", Some("prod"), High),
        ("delete_pvc", Some("production"), High),
        ("rollback_deployment", Some("prod"), High),
        ("drain_node", Some("prod"), High),
        // …and CRITICAL stays CRITICAL.
        ("drop_table", Some("production"), Critical),
        ("delete_namespace", Some("prod"), Critical),
    ] {
        assert_eq!(
            policy.base_risk(&request(kind, ns)),
            expect,
            "{kind} in {ns:?}"
        );
    }
    // Declared risks of executors' kinds: exact, else the longest prefix.
    let mut declared = policy.clone();
    declared.risks.insert("mcp:db/*".into(), Medium);
    declared.risks.insert("mcp:db/drop_table".into(), Critical);
    declared.risks.insert("mcp:*".into(), Low);
    declared.risks.insert("shell:flush-dns".into(), Low);
    assert_eq!(declared.risk_of("mcp:db/vacuum"), Medium);
    assert_eq!(declared.risk_of("mcp:db/drop_table"), Critical);
    assert_eq!(declared.risk_of("mcp:other/x"), Low);
    assert_eq!(declared.risk_of("shell:flush-dns"), Low);
    assert_eq!(declared.risk_of("shell:other"), High, "undeclared: unknown");
    assert_eq!(
        declared.base_risk(&request("mcp:db/drop_table", Some("prod"))),
        Critical
    );
    assert_eq!(
        declared.base_risk(&request("mcp:db/vacuum", Some("prod"))),
        High
    );
    let mut labelled = policy.clone();
    labelled
        .raise_labels
        .insert("tier".into(), "critical".into());
    let mut req = request("restart_deployment", None);
    req.labels.insert("tier".into(), "critical".into());
    assert_eq!(labelled.base_risk(&req), High);
}

#[test]
fn trust_patterns_group_generated_names() {
    for (kind, target, expect) in [
        (
            "restart_pod",
            "nginx-7d4b9c8f6d-x2k9q",
            "restart_pod:nginx-*",
        ),
        ("restart_pod", "nginx-x2k9q", "restart_pod:nginx-*"),
        (
            "delete_pvc",
            "data-postgres-backup",
            "delete_pvc:data-postgres-backup",
        ),
        (
            "restart_deployment",
            "frontend",
            "restart_deployment:frontend",
        ),
        ("restart_deployment", "api-v2", "restart_deployment:api-v2"),
    ] {
        assert_eq!(trust_pattern(kind, target), expect);
    }
}

#[test]
fn trust_thresholds_move_one_step_and_never_critical() {
    for (base, trust, expect) in [
        (High, 9, High),
        (High, 10, Medium),
        (High, 1_000, Medium),
        (Medium, 4, Medium),
        (Medium, 5, Low),
        (Medium, 1_000, Low),
        (Low, 0, Low),
        (Critical, 1_000_000, Critical),
    ] {
        assert_eq!(
            effective_risk(base, trust),
            expect,
            "{base} with trust {trust}"
        );
    }
    assert_eq!(next_trust(9, true), 10);
    assert_eq!(next_trust(42, false), 0);
    assert_eq!(next_trust(u32::MAX, true), u32::MAX);
    // Trust feeds new approvals: a trusted HIGH pattern needs one signature.
    let a = Approval::new(
        request("rollback_deployment", None),
        &PolicyTable::default(),
        10,
        t0(),
        Duration::minutes(60),
    );
    assert_eq!(
        (a.base_risk, a.effective_risk, a.requirement().signatures),
        (High, Medium, 1)
    );
}

/// Every risk × every role as the first signer: who may sign.
#[test]
fn the_matrix_role_by_role() {
    for risk in [Low, Medium, High, Critical] {
        for role in Role::ALL {
            let mut a = approval_at(risk);
            let result = a.sign("signer", role, Approve, t0());
            let eligible = match risk {
                Low => false,
                Medium | High => matches!(role, Admin | Devops | Sre),
                Critical => matches!(role, Cto | Ciso),
            };
            match (risk, eligible) {
                (Low, _) => assert_eq!(
                    result,
                    Err(PolicyError::Closed("APPROVED")),
                    "LOW is approved by the system"
                ),
                (_, true) => assert!(result.is_ok(), "{risk} {role}: {result:?}"),
                (_, false) => assert!(
                    matches!(result, Err(PolicyError::NotEligible { .. })),
                    "{risk} {role}: {result:?}"
                ),
            }
        }
    }
}

/// (risk, signatures in order, expected outcome of each)
#[test]
fn signing_scenarios() {
    type Step = (
        &'static str,
        Role,
        Decision,
        Result<ApprovalStatus, &'static str>,
    );
    let cases: Vec<(RiskLevel, Vec<Step>)> = vec![
        (
            Medium,
            vec![("bob", Sre, Approve, Ok(ApprovalStatus::Approved))],
        ),
        (
            High,
            vec![
                ("alice", Devops, Approve, Ok(ApprovalStatus::Pending)),
                (
                    "alice",
                    Devops,
                    Approve,
                    Err("you have already signed this approval"),
                ),
                ("bob", Sre, Approve, Ok(ApprovalStatus::Approved)),
            ],
        ),
        (
            High,
            vec![(
                "requester",
                Sre,
                Approve,
                Err("you requested this action; someone else must sign (four-eyes)"),
            )],
        ),
        (
            Critical,
            vec![
                (
                    "bob",
                    Sre,
                    Approve,
                    Err("CRITICAL needs a signature from CTO or CISO; you are SRE"),
                ),
                (
                    "ann",
                    Sre,
                    Approve,
                    Err("CRITICAL needs a signature from CTO or CISO; you are SRE"),
                ),
                ("carol", Cto, Approve, Ok(ApprovalStatus::Pending)),
                (
                    "carl",
                    Cto,
                    Approve,
                    Err("CRITICAL needs a signature from CISO; you are CTO"),
                ),
                ("dave", Ciso, Approve, Ok(ApprovalStatus::Approved)),
            ],
        ),
        (
            Critical,
            vec![
                ("dave", Ciso, Approve, Ok(ApprovalStatus::Pending)),
                ("carol", Cto, Approve, Ok(ApprovalStatus::Approved)),
            ],
        ),
        // A reject by an eligible signer ends it; nothing more is taken.
        (
            High,
            vec![
                ("alice", Devops, Approve, Ok(ApprovalStatus::Pending)),
                ("bob", Sre, Reject, Ok(ApprovalStatus::Rejected)),
                (
                    "admin",
                    Admin,
                    Approve,
                    Err("this approval is REJECTED and takes no more signatures"),
                ),
            ],
        ),
        // An ineligible reject changes nothing.
        (
            Critical,
            vec![
                (
                    "erin",
                    Viewer,
                    Reject,
                    Err("CRITICAL needs a signature from CTO or CISO; you are VIEWER"),
                ),
                ("carol", Cto, Approve, Ok(ApprovalStatus::Pending)),
            ],
        ),
    ];
    for (risk, steps) in cases {
        let mut a = approval_at(risk);
        for (who, role, decision, expect) in steps {
            let got = a.sign(who, role, decision, t0()).map_err(|e| e.to_string());
            assert_eq!(
                got,
                expect.map_err(str::to_owned),
                "{risk}: {who} ({role}) {decision:?}"
            );
        }
    }
}

#[test]
fn expiry_and_transitions() {
    let mut a = approval_at(High);
    let late = a.expires_at + Duration::seconds(1);
    let err = a.sign("bob", Sre, Approve, late).unwrap_err();
    assert_eq!(err, PolicyError::Closed("EXPIRED"));
    assert_eq!(a.status, ApprovalStatus::Expired);
    assert!(!a.expire_if_due(late));

    let mut b = approval_at(Medium);
    assert!(b.expire_if_due(b.expires_at));
    assert!(
        b.start_execution().is_err(),
        "never executes without quorum"
    );

    let mut c = approval_at(Medium);
    assert!(c.start_execution().is_err());
    c.sign("bob", Sre, Approve, t0()).unwrap();
    c.start_execution().unwrap();
    assert_eq!(
        c.start_execution().unwrap_err().to_string(),
        "cannot go from EXECUTING to EXECUTING",
        "never twice"
    );
    assert!(c.void().is_err(), "an execution in progress is not voided");
    c.finish(true).unwrap();
    assert_eq!(c.status, ApprovalStatus::Executed);

    let mut d = approval_at(Low);
    assert_eq!(d.status, ApprovalStatus::Approved);
    d.void().unwrap();
    assert_eq!(d.status, ApprovalStatus::Voided);
    assert!(d.start_execution().is_err(), "voided stays voided");
}
