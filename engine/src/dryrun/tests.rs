use std::collections::BTreeMap;

use super::*;

#[derive(Default, Clone)]
struct Cluster {
    forbidden: Vec<(&'static str, &'static str)>,
    resources: BTreeMap<(String, String), ResourceState>,
    budgets: BTreeMap<(String, String), Budget>,
}

impl ClusterView for Cluster {
    fn can(&self, _identity: &str, verb: &str, resource: &str, _ns: Option<&str>) -> bool {
        !self.forbidden.contains(&(verb, resource))
    }
    fn resource(&self, resource: &str, name: &str, _ns: Option<&str>) -> Option<ResourceState> {
        self.resources.get(&(resource.into(), name.into())).cloned()
    }
    fn budget(&self, resource: &str, name: &str, _ns: Option<&str>) -> Option<Budget> {
        self.budgets.get(&(resource.into(), name.into())).copied()
    }
}

fn demo() -> Cluster {
    let mut c = Cluster::default();
    c.resources.insert(
        ("deployments".into(), "frontend".into()),
        ResourceState {
            version: "41".into(),
            replicas: Some(3),
            ready: Some(3),
        },
    );
    c.resources.insert(
        ("pods".into(), "frontend-7d4b9c8f6d-x2k9q".into()),
        ResourceState {
            version: "7".into(),
            replicas: None,
            ready: Some(2),
        },
    );
    c.budgets.insert(
        ("deployments".into(), "frontend".into()),
        Budget { min_available: 2 },
    );
    c.budgets.insert(
        ("pods".into(), "frontend-7d4b9c8f6d-x2k9q".into()),
        Budget { min_available: 2 },
    );
    c
}

fn request(kind: &str, target: &str, params: serde_json::Value) -> ActionRequest {
    ActionRequest {
        kind: kind.into(),
        target: target.into(),
        namespace: Some("prod".into()),
        params,
        labels: Default::default(),
        requested_by: "alice".into(),
    }
}

fn failing(report: &DryRunReport) -> Vec<CheckName> {
    report
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name)
        .collect()
}

#[test]
fn each_check_fails_for_its_own_reason() {
    let ok = serde_json::json!({});
    let cases: Vec<(Cluster, ActionRequest, usize, Vec<CheckName>)> = vec![
        (
            demo(),
            request("restart_deployment", "frontend", ok.clone()),
            1,
            vec![],
        ),
        (
            demo(),
            request("restart_deployment", "ghost", ok.clone()),
            1,
            vec![CheckName::ResourceExists],
        ),
        (
            demo(),
            request("launch_rockets", "frontend", ok.clone()),
            1,
            vec![CheckName::Syntax, CheckName::Rbac],
        ),
        (
            demo(),
            request(
                "scale_deployment",
                "frontend",
                serde_json::json!({"replicas": "many"}),
            ),
            1,
            vec![CheckName::Syntax],
        ),
        (
            demo(),
            request(
                "scale_deployment",
                "frontend",
                serde_json::json!({"replicas": 1}),
            ),
            1,
            vec![CheckName::Pdb],
        ),
        (
            demo(),
            request(
                "scale_deployment",
                "frontend",
                serde_json::json!({"replicas_delta": 2}),
            ),
            1,
            vec![],
        ),
        (
            demo(),
            request("delete_pod", "frontend-7d4b9c8f6d-x2k9q", ok.clone()),
            1,
            vec![CheckName::Pdb],
        ),
        (
            Cluster {
                forbidden: vec![("patch", "deployments")],
                ..demo()
            },
            request("restart_deployment", "frontend", ok.clone()),
            1,
            vec![CheckName::Rbac],
        ),
        (
            demo(),
            request("restart_deployment", "frontend", ok),
            9,
            vec![CheckName::BlastRadius],
        ),
    ];
    for (cluster, req, blast, expect) in cases {
        let report = dry_run(&req, &cluster, "awoooi-executor", blast, 5);
        assert_eq!(
            failing(&report),
            expect,
            "{} {} {}",
            req.kind,
            req.target,
            req.params
        );
        assert_eq!(report.passed, expect.is_empty());
        assert_eq!(report.checks.len(), 5, "every check reports, pass or fail");
        assert!(report.checks.iter().all(|c| !c.detail.is_empty()));
    }
}

#[test]
fn details_read_like_sentences() {
    let report = dry_run(
        &request(
            "delete_pod",
            "frontend-7d4b9c8f6d-x2k9q",
            serde_json::json!({}),
        ),
        &demo(),
        "awoooi-executor",
        1,
        5,
    );
    let pdb = report
        .checks
        .iter()
        .find(|c| c.name == CheckName::Pdb)
        .unwrap();
    assert_eq!(
        pdb.detail,
        "would leave 1 ready, below the budget's minimum of 2"
    );
    let rbac = report
        .checks
        .iter()
        .find(|c| c.name == CheckName::Rbac)
        .unwrap();
    assert_eq!(rbac.detail, "awoooi-executor may delete pods in prod");
}

#[test]
fn toctou_voids_on_any_change_and_only_then() {
    let req = request("restart_deployment", "frontend", serde_json::json!({}));
    let approved = dry_run(&req, &demo(), "x", 1, 5);
    // Nothing changed: go.
    assert_eq!(
        recheck(&approved, &dry_run(&req, &demo(), "x", 1, 5)),
        Ok(())
    );
    // Someone scaled the deployment meanwhile: same checks pass, but the state moved.
    let mut scaled = demo();
    scaled.resources.insert(
        ("deployments".into(), "frontend".into()),
        ResourceState {
            version: "42".into(),
            replicas: Some(5),
            ready: Some(5),
        },
    );
    assert!(matches!(
        recheck(&approved, &dry_run(&req, &scaled, "x", 1, 5)),
        Err(VoidReason::StateChanged { .. })
    ));
    // Permission withdrawn: a check fails.
    let revoked = Cluster {
        forbidden: vec![("patch", "deployments")],
        ..demo()
    };
    let err = recheck(&approved, &dry_run(&req, &revoked, "x", 1, 5)).unwrap_err();
    assert!(err.to_string().contains("Rbac"), "{err}");
    // The topology grew: the blast radius is part of the state.
    assert!(recheck(&approved, &dry_run(&req, &demo(), "x", 2, 5)).is_err());
}
