//! FinOps through the API on the demo's simulated cluster, on SQLite and PostgreSQL: the seed's
//! panel, scans on demand (by role), the report kept, and the fixes as real actions.

use crate::support;

use serde_json::{Value, json};
use support::{Backend, TestServer};

on_both_backends!(
    the_demo_cluster_gives_the_seed_panel_and_scans_are_kept,
    a_finding_becomes_an_approval_showing_its_saving,
);

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
    // deleting a claim is HIGH (the production raise stops at HIGH) — two operators sign.
    assert_eq!(proposed["data"]["proposeAction"]["effectiveRisk"], "HIGH");
    for (name, role) in [("alice2", "devops"), ("bob2", "admin")] {
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

const APPROVAL: &str = "id status effectiveRisk requiredSignatures requestedBy dryRun { passed }
    action { kind target namespace params } finopsSaving { kind recommendation monthly annual currency }
    incident { id title status }";

async fn a_finding_becomes_an_approval_showing_its_saving(backend: Backend) {
    let server = TestServer::start_with(backend, &["--demo"]).await;
    let sre = server.signed_in("sam", "sre").await;
    let viewer = server.signed_in("vera", "viewer").await;
    let node_type = |answer: &Value| {
        answer["data"]["cluster"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["resource"] == "nodes" && o["name"] == "worker-large-01")
            .map(|o| o["class"].clone())
            .unwrap()
    };
    let before = server
        .graphql(Some(&sre), "{ cluster { resource name class } }", json!({}))
        .await;
    assert_eq!(node_type(&before), "m5.4xlarge");

    const PROPOSE: &str = "mutation($k: FindingKind!, $r: String!, $n: String) {
        proposeFinopsFix(kind: $k, resource: $r, namespace: $n) { APPROVAL } }";
    let propose = PROPOSE.replace("APPROVAL", APPROVAL);
    let resize = json!({"k": "OVERPROVISIONED_NODE", "r": "worker-large-01"});

    // Viewers may not propose; a finding the latest scan does not have is NOT_FOUND.
    let refused = server
        .graphql(Some(&viewer), &propose, resize.clone())
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{refused}"
    );
    let unknown = server
        .graphql(
            Some(&sre),
            &propose,
            json!({"k": "OVERPROVISIONED_NODE", "r": "worker-9"}),
        )
        .await;
    assert_eq!(
        unknown["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{unknown}"
    );
    assert!(
        unknown["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("no OVERPROVISIONED_NODE finding for `worker-9`"),
        "{unknown}"
    );

    // The node resize: HIGH, two signatures, dry-run clean, the saving on the card, under a
    // FinOps incident of its own.
    let proposed = server.graphql(Some(&sre), &propose, resize.clone()).await;
    assert_eq!(proposed["errors"], Value::Null, "{proposed}");
    let approval = &proposed["data"]["proposeFinopsFix"];
    assert_eq!(approval["status"], "PENDING");
    assert_eq!(approval["effectiveRisk"], "HIGH");
    assert_eq!(approval["requiredSignatures"], 2);
    assert_eq!(approval["requestedBy"], "sam");
    assert_eq!(approval["dryRun"]["passed"], true, "{approval}");
    assert_eq!(approval["action"]["kind"], "resize_node");
    assert_eq!(approval["action"]["params"]["node_type"], "t3.2xlarge");
    assert_eq!(
        approval["finopsSaving"],
        json!({"kind": "OVERPROVISIONED_NODE", "recommendation": "Resize node 'worker-large-01'",
               "monthly": "340.00", "annual": "4080.00", "currency": "USD"})
    );
    assert_eq!(approval["incident"]["status"], "AWAITING_APPROVAL");
    assert_eq!(
        approval["incident"]["title"],
        "FinOps: Resize node 'worker-large-01' saves USD 340.00/mo"
    );
    let id = approval["id"].as_str().unwrap().to_owned();
    let incident = approval["incident"]["id"].as_str().unwrap().to_owned();

    // Once waiting, it is not proposed twice; the report points at it.
    let twice = server.graphql(Some(&sre), &propose, resize.clone()).await;
    assert_eq!(
        twice["errors"][0]["extensions"]["code"], "CONFLICT",
        "{twice}"
    );
    let report = server
        .graphql(
            Some(&viewer),
            "{ finopsReport { findings { resource approval { id status } } } }",
            json!({}),
        )
        .await;
    let findings = report["data"]["finopsReport"]["findings"]
        .as_array()
        .unwrap();
    let of = |resource: &str| {
        findings
            .iter()
            .find(|f| f["resource"] == resource)
            .map(|f| f["approval"].clone())
            .unwrap()
    };
    assert_eq!(
        of("worker-large-01"),
        json!({"id": id, "status": "PENDING"})
    );
    assert_eq!(of("data-postgres-backup"), Value::Null);

    // One signature is not enough; the second runs it.
    let alice = server.signed_in("alice2", "devops").await;
    server.approve(&alice, &id).await;
    let half = server
        .graphql(
            Some(&sre),
            "query($id: ID!) { approval(id: $id) { status } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(half["data"]["approval"]["status"], "PENDING", "{half}");
    let bob = server.signed_in("bob2", "sre").await;
    server.approve(&bob, &id).await;
    let done = server
        .settled_approval(&sre, &id, "status incident { status resolvedAt }")
        .await;
    assert_eq!(done["status"], "EXECUTED", "{done}");
    assert_eq!(done["incident"]["status"], "RESOLVED", "{done}");
    assert!(done["incident"]["resolvedAt"].is_string(), "{done}");
    let after = server
        .graphql(Some(&sre), "{ cluster { resource name class } }", json!({}))
        .await;
    assert_eq!(node_type(&after), "t3.2xlarge");

    // The next scan no longer reports it; proposing the rest at once makes one approval
    // per remaining finding, and doing it again makes none.
    const SCAN: &str = "mutation($p: Boolean!) { runFinopsScan(propose: $p) {
        realizableMonthly findings { resource approval { id incident { id } } } } }";
    let rescan = server.graphql(Some(&sre), SCAN, json!({"p": true})).await;
    assert_eq!(rescan["errors"], Value::Null, "{rescan}");
    let report = &rescan["data"]["runFinopsScan"];
    assert_eq!(report["realizableMonthly"], "140.00", "{report}");
    let findings = report["findings"].as_array().unwrap();
    assert!(
        findings.iter().all(|f| f["resource"] != "worker-large-01"),
        "{report}"
    );
    assert_eq!(findings.len(), 3, "{report}");
    let ids: Vec<&Value> = findings.iter().map(|f| &f["approval"]["id"]).collect();
    assert!(ids.iter().all(|i| i.is_string()), "{report}");
    assert!(
        findings
            .iter()
            .all(|f| f["approval"]["incident"]["id"] != incident.as_str())
    );
    let again = server.graphql(Some(&sre), SCAN, json!({"p": true})).await;
    let again_ids: Vec<&Value> = again["data"]["runFinopsScan"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["approval"]["id"])
        .collect();
    assert_eq!(again_ids, ids, "{again}");
}
