//! Property test of the approval lifecycle under random interleavings of signatures, rejects,
//! cluster changes and execution attempts: never executes without quorum, never twice, and a
//! cluster change after the dry-run always ends VOIDED instead of executing.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use engine::Role;
use engine::dryrun::{Budget, ClusterView, DryRunReport, ResourceState, dry_run, recheck};
use engine::policy::{ActionRequest, Approval, ApprovalStatus, Decision, PolicyTable, requirement};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Sign { who: u8, role: u8, approve: bool },
    ClusterChange,
    Execute,
    Tick,
}

struct Cluster {
    version: u32,
}

impl ClusterView for Cluster {
    fn can(&self, _: &str, _: &str, _: &str, _: Option<&str>) -> bool {
        true
    }
    fn resource(&self, _: &str, _: &str, _: Option<&str>) -> Option<ResourceState> {
        Some(ResourceState {
            version: self.version.to_string(),
            replicas: Some(3),
            ready: Some(3),
        })
    }
    fn budget(&self, _: &str, _: &str, _: Option<&str>) -> Option<Budget> {
        None
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..5, 0u8..6, prop::bool::weighted(0.85))
            .prop_map(|(who, role, approve)| Op::Sign { who, role, approve }),
        1 => Just(Op::ClusterChange),
        3 => Just(Op::Execute),
        1 => Just(Op::Tick),
    ]
}

// LOW, MEDIUM, HIGH, CRITICAL — and one whose dry-run fails from the start.
const KINDS: [&str; 5] = [
    "run_diagnostics",
    "restart_deployment",
    "rollback_deployment",
    "delete_namespace",
    "launch_rockets",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn lifecycle_invariants(kind in 0usize..5, trust in 0u32..12, ops in prop::collection::vec(op(), 0..40)) {
        let t0: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-11-25T03:00:00Z").unwrap().into();
        let mut now = t0;
        let request = ActionRequest {
            kind: KINDS[kind].into(),
            target: "frontend".into(),
            namespace: None,
            params: serde_json::json!({}),
            labels: BTreeMap::new(),
            requested_by: "u0".into(),
        };
        let mut cluster = Cluster { version: 1 };
        let mut approval = Approval::new(request.clone(), &PolicyTable::default(), trust, t0, Duration::minutes(60));
        let checked: DryRunReport = dry_run(&request, &cluster, "executor", 1, 10);
        let mut changed_since_dry_run = false;
        let mut executions = 0;

        for op in ops {
            match op {
                Op::Sign { who, role, approve } => {
                    let role = Role::ALL[role as usize];
                    let decision = if approve { Decision::Approve } else { Decision::Reject };
                    let _ = approval.sign(&format!("u{who}"), role, decision, now);
                }
                Op::ClusterChange => {
                    cluster.version += 1;
                    changed_since_dry_run = true;
                }
                Op::Tick => {
                    now += Duration::minutes(25);
                    approval.expire_if_due(now);
                }
                Op::Execute => {
                    if approval.status != ApprovalStatus::Approved {
                        prop_assert!(approval.start_execution().is_err());
                        continue;
                    }
                    // Quorum: enough distinct approving signers, mandatory roles present.
                    let need = requirement(approval.effective_risk);
                    let approvers: Vec<_> = approval.signatures.iter()
                        .filter(|s| s.decision == Decision::Approve).collect();
                    prop_assert!(approvers.len() >= need.signatures);
                    for role in &need.mandatory {
                        prop_assert!(approvers.iter().any(|s| s.role == *role));
                    }
                    prop_assert!(approvers.iter().all(|s| s.signer != "u0"), "four-eyes");
                    let again = dry_run(&request, &cluster, "executor", 1, 10);
                    let must_void = changed_since_dry_run || !checked.passed;
                    match recheck(&checked, &again) {
                        Ok(()) => {
                            prop_assert!(!must_void, "a changed cluster or failing check must not execute");
                            approval.start_execution().unwrap();
                            approval.finish(true).unwrap();
                            executions += 1;
                        }
                        Err(_) => {
                            prop_assert!(must_void, "voided only for a reason");
                            approval.void().unwrap();
                        }
                    }
                }
            }
            prop_assert!(executions <= 1, "never twice");
        }
        if changed_since_dry_run {
            prop_assert!(approval.status != ApprovalStatus::Executed || executions == 1);
        }
    }
}
