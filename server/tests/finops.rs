//! FinOps through the API on the demo's simulated cluster, on SQLite and PostgreSQL: the seed's
//! panel, scans on demand (by role), the report kept, and the fixes as real actions.

mod support;

use serde_json::{Value, json};
use support::{Backend, TestServer};

on_both_backends!(the_demo_cluster_gives_the_seed_panel_and_scans_are_kept);

const REPORT: &str = "currency monthlyWaste realizableMonthly freedMonthly annualIfAllFixed trigger
    findings { kind resource namespace monthlyCost saving bucket risk recommendation actionKind actionParams }";

async fn the_demo_cluster_gives_the_seed_panel_and_scans_are_kept(backend: Backend) {
    let server = TestServer::start_with(backend, &["--demo"]).await;
    let viewer = server.signed_in("vera", "viewer").await;
    let sre = server.signed_in("sam", "sre").await;
    let answer = server
        .graphql(
            Some(&viewer),
            &format!("{{ finopsReport {{ {REPORT} }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(answer["errors"], Value::Null, "{answer}");
    let report = &answer["data"]["finopsReport"];
    assert_eq!(report["monthlyWaste"], "523.60");
    assert_eq!(report["realizableMonthly"], "480.00");
    assert_eq!(report["freedMonthly"], "43.60");
    assert_eq!(report["annualIfAllFixed"], "5760.00");
    assert_eq!(report["currency"], "USD");
    let lines: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} -${} {}",
                f["recommendation"].as_str().unwrap(),
                f["monthlyCost"].as_str().unwrap(),
                f["risk"].as_str().unwrap()
            )
        })
        .collect();
    for wanted in [
        "Delete orphaned PVC 'data-postgres-backup' -$40.00 LOW",
        "Resize node 'worker-large-01' -$340.00 HIGH",
        "Delete zombie Pod 'legacy-api-5d7b8' -$76.00 MEDIUM",
    ] {
        assert!(lines.contains(&wanted.to_owned()), "{wanted}: {lines:#?}");
    }

    // A viewer may read but not scan; an SRE scans and the new report is the latest.
    let refused = server
        .graphql(
            Some(&viewer),
            "mutation { runFinopsScan { monthlyWaste } }",
            json!({}),
        )
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{refused}"
    );
    let scanned = server
        .graphql(
            Some(&sre),
            &format!("mutation {{ runFinopsScan {{ {REPORT} }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(scanned["errors"], Value::Null, "{scanned}");
    assert_eq!(scanned["data"]["runFinopsScan"]["trigger"], "MANUAL:sam");
    let latest = server
        .graphql(
            Some(&viewer),
            "{ finopsReport { trigger monthlyWaste } }",
            json!({}),
        )
        .await;
    assert_eq!(
        latest["data"]["finopsReport"]["trigger"], "MANUAL:sam",
        "{latest}"
    );

    // The orphaned claim's fix, proposed as an ordinary action, dry-runs clean, is signed
    // and runs; the next scan no longer finds it.
    let incident = server
        .incident_from_alert(
            &sre,
            json!({"name": "FinOpsReview", "service": "postgres-db", "severity": "info"}),
        )
        .await;
    let proposed = server
        .graphql(
            Some(&sre),
            "mutation($i: ID!, $a: ActionInput!) { proposeAction(incidentId: $i, action: $a) { id effectiveRisk dryRun { passed } } }",
            json!({"i": incident, "a": {"kind": "delete_pvc", "target": "data-postgres-backup", "namespace": "prod"}}),
        )
        .await;
    assert_eq!(proposed["errors"], Value::Null, "{proposed}");
    let id = proposed["data"]["proposeAction"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        proposed["data"]["proposeAction"]["dryRun"]["passed"], true,
        "{proposed}"
    );
    // The finding's risk is FinOps' view; the approval follows the policy like any action:
    // deleting a claim is HIGH, raised to CRITICAL in `prod` — a CTO and a CISO sign.
    assert_eq!(
        proposed["data"]["proposeAction"]["effectiveRisk"],
        "CRITICAL"
    );
    for (name, role) in [("carol2", "cto"), ("dave2", "ciso")] {
        let signer = server.signed_in(name, role).await;
        server.approve(&signer, &id).await;
    }
    let done = server.settled_approval(&sre, &id, "status").await;
    assert_eq!(done["status"], "EXECUTED", "{done}");
    let after = server
        .graphql(
            Some(&sre),
            "mutation { runFinopsScan { realizableMonthly findings { resource } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        after["data"]["runFinopsScan"]["realizableMonthly"], "440.00",
        "{after}"
    );
}
