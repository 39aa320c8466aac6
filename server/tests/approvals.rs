//! Approvals end to end over GraphQL, on SQLite and PostgreSQL: the risk matrix as people meet
//! it (four-eyes, roles, CTO+CISO), execution on the simulated cluster, TOCTOU voiding, expiry,
//! trust, and the audit trail of every step.

use crate::support;

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseBackend, EntityTrait, Statement};
use serde_json::{Value, json};
use support::{Backend, TestServer};

on_both_backends!(
    high_needs_two_distinct_operators_then_executes,
    a_production_rollback_is_high_and_operators_sign_it,
    critical_needs_a_cto_and_a_ciso,
    reject_ends_it_and_resets_trust,
    a_change_between_approval_and_execution_voids_it,
    expired_approvals_take_no_signatures,
    interrupted_executions_end_failed_and_never_rerun,
    bad_requests_are_named_and_change_nothing,
    an_approved_restart_really_replaces_the_pods,
    a_change_after_the_recheck_voids_the_approval_at_the_apply,
    chaos_through_the_api_voids_a_waiting_approval,
    unknown_states_in_rows_fail_the_read_and_name_the_value,
    diagnostics_pass_their_dry_run_and_run_at_once_as_low_risk,
);

const APPROVAL: &str = "id status baseRisk effectiveRisk trust pattern requiredSignatures
    requiredRoles mandatoryRoles requestedBy voidReason
    action { kind target namespace params }
    signatures { signer role decision comment }
    dryRun { passed stateFingerprint blastRadius checks { name passed detail } }
    recheck { passed stateFingerprint }
    execution { executor status output }
    viewerCanSign { allowed reason }";

/// An incident to attach proposals to (about a service outside the topology, so the Brain's
/// own proposal does not touch the deployments these tests act on).
async fn incident(server: &TestServer, token: &str) -> String {
    server
        .incident_from_alert(
            token,
            json!({"name": "Checkout slow", "service": "checkout", "severity": "warning"}),
        )
        .await
}

async fn propose(server: &TestServer, token: &str, incident: &str, action: Value) -> Value {
    let query = format!(
        "mutation($i: ID!, $a: ActionInput!) {{ proposeAction(incidentId: $i, action: $a) {{ {APPROVAL} }} }}"
    );
    server
        .graphql(Some(token), &query, json!({"i": incident, "a": action}))
        .await
}

async fn approve(server: &TestServer, token: &str, id: &str) -> Value {
    let query = format!(
        "mutation($id: ID!) {{ approve(approvalId: $id, comment: \"looks right\") {{ {APPROVAL} }} }}"
    );
    server.graphql(Some(token), &query, json!({"id": id})).await
}

async fn reject(server: &TestServer, token: &str, id: &str, reason: &str) -> Value {
    let query = format!(
        "mutation($id: ID!, $r: String!) {{ reject(approvalId: $id, reason: $r) {{ {APPROVAL} }} }}"
    );
    server
        .graphql(Some(token), &query, json!({"id": id, "r": reason}))
        .await
}

async fn get(server: &TestServer, token: &str, id: &str) -> Value {
    let query = format!("query($id: ID!) {{ approval(id: $id) {{ {APPROVAL} }} }}");
    let answer = server.graphql(Some(token), &query, json!({"id": id})).await;
    assert_eq!(answer["errors"], Value::Null, "{answer}");
    answer["data"]["approval"].clone()
}

/// Waits for the background executor to finish with the approval.
async fn settled(server: &TestServer, token: &str, id: &str) -> Value {
    for _ in 0..400 {
        let approval = get(server, token, id).await;
        if !matches!(approval["status"].as_str(), Some("APPROVED" | "EXECUTING")) {
            return approval;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("approval {id} never finished executing");
}

fn error(answer: &Value) -> (String, String) {
    let e = &answer["errors"][0];
    assert!(e.is_object(), "expected an error: {answer}");
    (
        e["extensions"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        e["message"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn audit_actions(server: &TestServer, token: &str, subject: &str) -> Vec<String> {
    let answer = server
        .graphql(
            Some(token),
            "{ auditEvents(first: 500) { edges { node { action subject } } } auditVerify { valid } }",
            json!({}),
        )
        .await;
    assert_eq!(answer["data"]["auditVerify"]["valid"], true, "{answer}");
    let mut actions: Vec<String> = answer["data"]["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["node"]["subject"] == subject)
        .map(|e| e["node"]["action"].as_str().unwrap().to_owned())
        .collect();
    actions.reverse(); // oldest first
    actions
}

async fn high_needs_two_distinct_operators_then_executes(backend: Backend) {
    let server = TestServer::with_demo_topology(backend).await;
    let sam = server.signed_in("sam", "sre").await;
    let alice = server.signed_in("alice", "devops").await;
    let bob = server.signed_in("bob", "sre").await;
    let carol = server.signed_in("carol", "cto").await;
    let erin = server.signed_in("erin", "viewer").await;
    let incident = incident(&server, &sam).await;

    // Restarting a deployment is MEDIUM; in the `prod` namespace it is one level higher.
    let answer = propose(
        &server,
        &sam,
        &incident,
        json!({"kind": "restart_deployment", "target": "postgres-db", "rationale": "stuck"}),
    )
    .await;
    assert_eq!(answer["errors"], Value::Null, "{answer}");
    let approval = &answer["data"]["proposeAction"];
    let id = approval["id"].as_str().unwrap().to_owned();
    assert_eq!(approval["status"], "PENDING");
    assert_eq!(approval["baseRisk"], "HIGH");
    assert_eq!(approval["effectiveRisk"], "HIGH");
    assert_eq!(approval["requiredSignatures"], 2);
    assert_eq!(approval["requiredRoles"], json!(["ADMIN", "DEVOPS", "SRE"]));
    assert_eq!(approval["action"]["namespace"], "prod");
    assert_eq!(approval["requestedBy"], "sam");
    assert_eq!(approval["pattern"], "restart_deployment:postgres-db");
    let dry_run = &approval["dryRun"];
    assert_eq!(dry_run["passed"], true, "{dry_run}");
    let names: Vec<&str> = dry_run["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["SYNTAX", "RBAC", "RESOURCE_EXISTS", "PDB", "BLAST_RADIUS"]
    );
    // postgres-db: auth-service, product-api, order-api, frontend, ingress depend on it.
    assert_eq!(dry_run["blastRadius"], 5);
    assert_eq!(
        dry_run["stateFingerprint"].as_str().unwrap().len(),
        32,
        "keyed digest"
    );
    assert_eq!(approval["viewerCanSign"]["allowed"], false);

    let (code, message) = error(&approve(&server, &sam, &id).await);
    assert_eq!(code, "FORBIDDEN");
    assert!(message.contains("four-eyes"), "{message}");
    let (code, message) = error(&approve(&server, &erin, &id).await);
    assert_eq!(code, "FORBIDDEN");
    assert_eq!(
        message,
        "HIGH needs a signature from ADMIN, DEVOPS or SRE; you are VIEWER"
    );
    let (code, _) = error(&approve(&server, &carol, &id).await);
    assert_eq!(
        code, "FORBIDDEN",
        "a CTO is not an operator of a HIGH action"
    );
    let (code, _) = error(&reject(&server, &erin, &id, "no").await);
    assert_eq!(code, "FORBIDDEN", "a viewer's reject counts for nothing");
    let seen_by_erin = get(&server, &erin, &id).await;
    assert_eq!(seen_by_erin["viewerCanSign"]["allowed"], false);
    assert_eq!(
        seen_by_erin["viewerCanSign"]["reason"],
        "HIGH needs a signature from ADMIN, DEVOPS or SRE; you are VIEWER"
    );
    assert_eq!(
        get(&server, &alice, &id).await["viewerCanSign"]["allowed"],
        true
    );

    let answer = approve(&server, &alice, &id).await;
    assert_eq!(answer["errors"], Value::Null, "{answer}");
    assert_eq!(answer["data"]["approve"]["status"], "PENDING");
    let (code, message) = error(&approve(&server, &alice, &id).await);
    assert_eq!(code, "CONFLICT");
    assert!(message.contains("already signed"), "{message}");

    let answer = approve(&server, &bob, &id).await;
    assert_eq!(answer["errors"], Value::Null, "{answer}");
    let done = settled(&server, &bob, &id).await;
    assert_eq!(done["status"], "EXECUTED", "{done}");
    assert_eq!(
        done["signatures"],
        json!([
            {"signer": "alice", "role": "DEVOPS", "decision": "APPROVE", "comment": "looks right"},
            {"signer": "bob", "role": "SRE", "decision": "APPROVE", "comment": "looks right"},
        ])
    );
    assert_eq!(done["execution"]["executor"], "simulated");
    assert_eq!(done["execution"]["status"], "SUCCEEDED");
    assert!(
        done["execution"]["output"]
            .as_str()
            .unwrap()
            .starts_with("deployments/postgres-db restarted"),
        "{done}"
    );
    assert_eq!(done["recheck"]["passed"], true);
    assert_eq!(
        done["recheck"]["stateFingerprint"],
        done["dryRun"]["stateFingerprint"]
    );
    let cluster = server.state.approvals.simulated_cluster().unwrap();
    let runs = cluster.with(|c| {
        c.applied()
            .iter()
            .filter(|a| a.approval.to_string() == id)
            .count()
    });
    assert_eq!(runs, 1);

    let trust = server
        .graphql(
            Some(&erin),
            "{ trustScores { pattern score baseRisk effectiveRisk } }",
            json!({}),
        )
        .await;
    assert_eq!(
        trust["data"]["trustScores"],
        json!([{"pattern": "restart_deployment:postgres-db", "score": 1,
                "baseRisk": "HIGH", "effectiveRisk": "HIGH"}])
    );
    assert_eq!(
        audit_actions(&server, &erin, &format!("approval:{id}")).await,
        [
            "approval.proposed",
            "approval.signed",
            "approval.approved",
            "approval.executing",
            "approval.executed"
        ]
    );
    let incident_status = server
        .graphql(
            Some(&erin),
            "query($id: ID!) { incident(id: $id) { status } }",
            json!({"id": incident}),
        )
        .await;
    assert_eq!(incident_status["data"]["incident"]["status"], "MITIGATING");
}

/// A production rollback is HIGH, not CRITICAL: the production raise stops at HIGH, so two
/// operators sign it and trust can still lower it.
async fn a_production_rollback_is_high_and_operators_sign_it(backend: Backend) {
    let server = TestServer::with_demo_topology(backend).await;
    let sam = server.signed_in("sam", "sre").await;
    let alice = server.signed_in("alice", "devops").await;
    let bob = server.signed_in("bob", "sre").await;
    let incident = incident(&server, &sam).await;
    let answer = propose(
        &server,
        &sam,
        &incident,
        json!({"kind": "rollback_deployment", "target": "order-api", "namespace": "prod"}),
    )
    .await;
    let approval = &answer["data"]["proposeAction"];
    assert_eq!(approval["baseRisk"], "HIGH", "{answer}");
    assert_eq!(approval["mandatoryRoles"], json!([]), "{answer}");
    let id = approval["id"].as_str().unwrap().to_owned();
    for token in [&alice, &bob] {
        assert_eq!(approve(&server, token, &id).await["errors"], Value::Null);
    }
    let done = settled(&server, &bob, &id).await;
    assert_eq!(done["status"], "EXECUTED", "{done}");
    // A read-only action stays LOW in production.
    let answer = propose(
        &server,
        &sam,
        &incident,
        json!({"kind": "run_diagnostics", "target": "order-api", "namespace": "prod"}),
    )
    .await;
    assert_eq!(
        answer["data"]["proposeAction"]["baseRisk"], "LOW",
        "{answer}"
    );
}

async fn critical_needs_a_cto_and_a_ciso(backend: Backend) {
    // CRITICAL is what the table says is irreversible; here the operator's table says a
    // rollback is.
    let topology = support::DemoTopology::new();
    let server = TestServer::start_configured(
        backend,
        &topology.args(),
        "[approvals.risks]\nrollback_deployment = \"CRITICAL\"\n",
    )
    .await;
    let sam = server.signed_in("sam", "sre").await;
    let alice = server.signed_in("alice", "devops").await;
    let bob = server.signed_in("bob", "sre").await;
    let carol = server.signed_in("carol", "cto").await;
    let carl = server.signed_in("carl", "cto").await;
    let dave = server.signed_in("dave", "ciso").await;
    let incident = incident(&server, &sam).await;

    // The configured table makes a rollback CRITICAL.
    let answer = propose(
        &server,
        &sam,
        &incident,
        json!({"kind": "rollback_deployment", "target": "order-api"}),
    )
    .await;
    let approval = &answer["data"]["proposeAction"];
    let id = approval["id"].as_str().unwrap().to_owned();
    assert_eq!(approval["effectiveRisk"], "CRITICAL", "{answer}");
    assert_eq!(approval["mandatoryRoles"], json!(["CTO", "CISO"]));

    for token in [&alice, &bob] {
        let (code, message) = error(&approve(&server, token, &id).await);
        assert_eq!(code, "FORBIDDEN");
        assert!(message.starts_with("CRITICAL needs a signature from CTO or CISO; you are "));
    }
    assert_eq!(
        approve(&server, &carol, &id).await["data"]["approve"]["status"],
        "PENDING"
    );
    let (code, message) = error(&approve(&server, &carl, &id).await);
    assert_eq!(code, "FORBIDDEN");
    assert_eq!(message, "CRITICAL needs a signature from CISO; you are CTO");
    assert_eq!(approve(&server, &dave, &id).await["errors"], Value::Null);
    let done = settled(&server, &dave, &id).await;
    assert_eq!(done["status"], "EXECUTED", "{done}");
    assert_eq!(
        done["execution"]["output"],
        "deployments/order-api rolled back to revision 1"
    );
}

async fn reject_ends_it_and_resets_trust(backend: Backend) {
    let server = TestServer::with_demo_topology(backend).await;
    let sam = server.signed_in("sam", "sre").await;
    let alice = server.signed_in("alice", "devops").await;
    let bob = server.signed_in("bob", "sre").await;
    let incident = incident(&server, &sam).await;
    let action = json!({"kind": "scale_deployment", "target": "frontend",
        "params": {"replicas_delta": 1}});

    let first = propose(&server, &sam, &incident, action.clone()).await;
    let first = first["data"]["proposeAction"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    approve(&server, &alice, &first).await;
    approve(&server, &bob, &first).await;
    assert_eq!(settled(&server, &sam, &first).await["status"], "EXECUTED");
    let scores = "{ trustScores { pattern score } }";
    assert_eq!(
        server.graphql(Some(&sam), scores, json!({})).await["data"]["trustScores"],
        json!([{"pattern": "scale_deployment:frontend", "score": 1}])
    );

    let second = propose(&server, &sam, &incident, action).await;
    let second_approval = &second["data"]["proposeAction"];
    assert_eq!(second_approval["trust"], 1, "{second}");
    let second = second_approval["id"].as_str().unwrap().to_owned();
    let (code, _) = error(&reject(&server, &alice, &second, "  ").await);
    assert_eq!(code, "BAD_USER_INPUT");
    let answer = reject(&server, &alice, &second, "not during the sale").await;
    assert_eq!(answer["errors"], Value::Null, "{answer}");
    assert_eq!(answer["data"]["reject"]["status"], "REJECTED");
    let (code, message) = error(&approve(&server, &bob, &second).await);
    assert_eq!(code, "CONFLICT");
    assert_eq!(
        message,
        "this approval is REJECTED and takes no more signatures"
    );
    assert_eq!(
        server.graphql(Some(&sam), scores, json!({})).await["data"]["trustScores"],
        json!([{"pattern": "scale_deployment:frontend", "score": 0}])
    );
    assert_eq!(
        audit_actions(&server, &sam, &format!("approval:{second}")).await,
        ["approval.proposed", "approval.rejected"]
    );
}

async fn a_change_between_approval_and_execution_voids_it(backend: Backend) {
    let server = TestServer::with_demo_topology(backend).await;
    let sam = server.signed_in("sam", "sre").await;
    let alice = server.signed_in("alice", "devops").await;
    let bob = server.signed_in("bob", "sre").await;
    let incident = incident(&server, &sam).await;
    let answer = propose(
        &server,
        &sam,
        &incident,
        json!({"kind": "restart_deployment", "target": "order-api"}),
    )
    .await;
    let id = answer["data"]["proposeAction"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    approve(&server, &alice, &id).await;
    // Someone scales order-api by hand while the approval waits for its second signature.
    let cluster = server.state.approvals.simulated_cluster().unwrap().clone();
    cluster.with(|c| c.set_replicas(Some("prod"), "order-api", 5).unwrap());
    approve(&server, &bob, &id).await;
    let done = settled(&server, &sam, &id).await;
    assert_eq!(done["status"], "VOIDED", "{done}");
    assert!(
        done["voidReason"]
            .as_str()
            .unwrap()
            .starts_with("the cluster changed since the dry-run"),
        "{done}"
    );
    assert_ne!(
        done["recheck"]["stateFingerprint"],
        done["dryRun"]["stateFingerprint"]
    );
    assert_eq!(done["execution"], Value::Null);
    assert!(cluster.with(|c| c.applied().is_empty()), "never executed");
    // Never silently retried: a later execute attempt is refused.
    let again = server.state.approvals.execute(id.parse().unwrap()).await;
    assert!(again.is_err());
    assert_eq!(
        audit_actions(&server, &sam, &format!("approval:{id}")).await,
        [
            "approval.proposed",
            "approval.signed",
            "approval.approved",
            "approval.voided"
        ]
    );
}

async fn expired_approvals_take_no_signatures(backend: Backend) {
    let server = TestServer::with_demo_topology(backend).await;
    let sam = server.signed_in("sam", "sre").await;
    let alice = server.signed_in("alice", "devops").await;
    let incident = incident(&server, &sam).await;
    let answer = propose(
        &server,
        &sam,
        &incident,
        json!({"kind": "restart_deployment", "target": "frontend"}),
    )
    .await;
    let id = answer["data"]["proposeAction"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let backend = match backend {
        Backend::Sqlite => DatabaseBackend::Sqlite,
        Backend::Postgres => DatabaseBackend::Postgres,
    };
    let past = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let sql = match backend {
        DatabaseBackend::Postgres => {
            format!("UPDATE approvals SET expires_at = '{past}'::timestamptz WHERE id = {id}")
        }
        _ => format!("UPDATE approvals SET expires_at = '{past}' WHERE id = {id}"),
    };
    server
        .state
        .db
        .execute_raw(Statement::from_string(backend, sql))
        .await
        .unwrap();
    let (code, message) = error(&approve(&server, &alice, &id).await);
    assert_eq!(code, "CONFLICT");
    assert!(message.starts_with("this approval expired at"), "{message}");
    let expired = get(&server, &alice, &id).await;
    assert_eq!(expired["status"], "EXPIRED");
    assert_eq!(expired["signatures"], json!([]));
    assert_eq!(
        audit_actions(&server, &sam, &format!("approval:{id}")).await,
        ["approval.proposed", "approval.expired"]
    );
}

async fn bad_requests_are_named_and_change_nothing(backend: Backend) {
    let server = TestServer::with_demo_topology(backend).await;
    let sam = server.signed_in("sam", "sre").await;
    let erin = server.signed_in("erin", "viewer").await;
    let incident = incident(&server, &sam).await;
    // PENDING only: the Brain's own proposal for the incident (LOW, run at once) may land
    // while this test runs.
    let count = "{ approvals(status: PENDING, first: 50) { totalCount } }";
    let before =
        server.graphql(Some(&sam), count, json!({})).await["data"]["approvals"]["totalCount"]
            .clone();

    let cases = [
        (
            &sam,
            incident.as_str(),
            json!({"kind": "restart_deployment", "target": " "}),
            "BAD_USER_INPUT",
            "action.target: must not be empty",
        ),
        (
            &sam,
            incident.as_str(),
            json!({"kind": "restart_deployment", "target": "x", "params": [1]}),
            "BAD_USER_INPUT",
            "action.params: must be a JSON object",
        ),
        (
            &sam,
            "999999",
            json!({"kind": "restart_deployment", "target": "x"}),
            "NOT_FOUND",
            "incident 999999 not found",
        ),
        (
            &erin,
            incident.as_str(),
            json!({"kind": "restart_deployment", "target": "x"}),
            "FORBIDDEN",
            "role VIEWER may not do this",
        ),
    ];
    for (token, incident, action, code, message) in cases {
        let answer = propose(&server, token, incident, action).await;
        assert_eq!(error(&answer), (code.to_owned(), message.to_owned()));
    }
    let after =
        server.graphql(Some(&sam), count, json!({})).await["data"]["approvals"]["totalCount"]
            .clone();
    assert_eq!(before, after);

    let (code, message) = error(&approve(&server, &sam, "424242").await);
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("NOT_FOUND", "approval 424242 not found")
    );
    let (code, _) = error(&approve(&server, &sam, "not-an-id").await);
    assert_eq!(code, "BAD_USER_INPUT");
    let anonymous = server
        .graphql(None, "{ approvals { totalCount } }", json!({}))
        .await;
    assert_eq!(error(&anonymous).0, "UNAUTHENTICATED");
    assert_eq!(
        server
            .graphql(Some(&sam), "{ approval(id: \"424242\") { id } }", json!({}))
            .await["data"]["approval"],
        Value::Null
    );
}

const CLUSTER: &str =
    "{ cluster { resource namespace name version replicas ready phase restarts owner condition } }";

async fn cluster(server: &TestServer, token: &str) -> Vec<Value> {
    let answer = server.graphql(Some(token), CLUSTER, json!({})).await;
    assert_eq!(answer["errors"], Value::Null, "{answer}");
    answer["data"]["cluster"].as_array().unwrap().clone()
}

fn pods_of(objects: &[Value], deployment: &str) -> Vec<String> {
    objects
        .iter()
        .filter(|o| o["resource"] == "pods" && o["owner"] == deployment)
        .map(|o| o["name"].as_str().unwrap().to_owned())
        .collect()
}

fn deployment<'a>(objects: &'a [Value], name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["resource"] == "deployments" && o["name"] == name)
        .unwrap()
}

/// TOCTOU to the last moment on the simulated cluster: the re-check passes, then the
/// deployment is scaled (chaos right after the re-check's dry-run); the apply reads the state
/// again under the same hold as its write, finds it moved, and does nothing — VOIDED.
async fn a_change_after_the_recheck_voids_the_approval_at_the_apply(backend: Backend) {
    let server = TestServer::with_demo_topology(backend).await;
    let sam = server.signed_in("sam", "sre").await;
    let alice = server.signed_in("alice", "devops").await;
    let bob = server.signed_in("bob", "sre").await;
    let incident = incident(&server, &sam).await;
    let old_pods = pods_of(&cluster(&server, &sam).await, "order-api");
    let answer = propose(
        &server,
        &sam,
        &incident,
        json!({"kind": "restart_deployment", "target": "order-api"}),
    )
    .await;
    let id = answer["data"]["proposeAction"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    approve(&server, &alice, &id).await;
    // Armed after the proposal's dry-run: it fires after the re-check's.
    server
        .state
        .approvals
        .simulated_cluster()
        .expect("the simulated cluster")
        .after_next_dry_run(|c| {
            c.set_replicas(Some("prod"), "order-api", 5).unwrap();
        });
    approve(&server, &bob, &id).await;
    let done = settled(&server, &sam, &id).await;
    assert_eq!(done["status"], "VOIDED", "{done}");
    assert!(
        done["voidReason"]
            .as_str()
            .unwrap()
            .contains("changed between the re-check and the apply"),
        "{done}"
    );
    assert_eq!(
        done["recheck"]["passed"], true,
        "the re-check itself passed: {done}"
    );
    assert_eq!(done["execution"]["status"], "FAILED", "{done}");
    let pods = pods_of(&cluster(&server, &sam).await, "order-api");
    assert!(
        old_pods.iter().all(|p| pods.contains(p)),
        "no pod was replaced: {old_pods:?} → {pods:?}"
    );
}

async fn an_approved_restart_really_replaces_the_pods(backend: Backend) {
    let server = TestServer::with_demo_topology(backend).await;
    let sam = server.signed_in("sam", "sre").await;
    let alice = server.signed_in("alice", "devops").await;
    let bob = server.signed_in("bob", "sre").await;
    let incident = incident(&server, &sam).await;
    let before = cluster(&server, &sam).await;
    let old_pods = pods_of(&before, "order-api");
    assert_eq!(old_pods.len(), 3);
    let answer = propose(
        &server,
        &sam,
        &incident,
        json!({"kind": "restart_deployment", "target": "order-api"}),
    )
    .await;
    let id = answer["data"]["proposeAction"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    approve(&server, &alice, &id).await;
    approve(&server, &bob, &id).await;
    assert_eq!(settled(&server, &sam, &id).await["status"], "EXECUTED");
    let after = cluster(&server, &sam).await;
    let new_pods = pods_of(&after, "order-api");
    assert_eq!(new_pods.len(), 3);
    assert!(
        new_pods.iter().all(|p| !old_pods.contains(p)),
        "{old_pods:?} → {new_pods:?}"
    );
    let (was, now) = (
        deployment(&before, "order-api"),
        deployment(&after, "order-api"),
    );
    assert_ne!(was["version"], now["version"]);
    assert_eq!(now["ready"], 3);
}

async fn chaos_through_the_api_voids_a_waiting_approval(backend: Backend) {
    let server = TestServer::with_demo_topology(backend).await;
    let root = server.signed_in("root", "admin").await;
    let alice = server.signed_in("alice", "devops").await;
    let bob = server.signed_in("bob", "sre").await;
    let erin = server.signed_in("erin", "viewer").await;
    let incident = incident(&server, &root).await;
    let answer = propose(
        &server,
        &root,
        &incident,
        json!({"kind": "scale_deployment", "target": "frontend", "params": {"replicas_delta": 1}}),
    )
    .await;
    let id = answer["data"]["proposeAction"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    approve(&server, &alice, &id).await;

    let chaos = "mutation($k: ChaosKind!, $t: String!, $r: Int) { clusterChaos(kind: $k, target: $t, replicas: $r) }";
    let refused = server
        .graphql(
            Some(&erin),
            chaos,
            json!({"k": "SET_REPLICAS", "t": "frontend", "r": 5}),
        )
        .await;
    assert_eq!(error(&refused).0, "FORBIDDEN");
    let missing = server
        .graphql(
            Some(&root),
            chaos,
            json!({"k": "SET_REPLICAS", "t": "frontend"}),
        )
        .await;
    assert_eq!(error(&missing).0, "BAD_USER_INPUT");
    let unknown = server
        .graphql(
            Some(&root),
            chaos,
            json!({"k": "CRASH_POD", "t": "no-such-pod"}),
        )
        .await;
    assert_eq!(
        error(&unknown),
        (
            "NOT_FOUND".to_owned(),
            "pods/no-such-pod not found".to_owned()
        )
    );
    let done = server
        .graphql(
            Some(&root),
            chaos,
            json!({"k": "SET_REPLICAS", "t": "frontend", "r": 5}),
        )
        .await;
    assert_eq!(
        done["data"]["clusterChaos"], "deployments/frontend now wants 5 replica(s)",
        "{done}"
    );

    approve(&server, &bob, &id).await;
    let voided = settled(&server, &root, &id).await;
    assert_eq!(voided["status"], "VOIDED", "{voided}");
    assert_eq!(
        pods_of(&cluster(&server, &root).await, "frontend").len(),
        5,
        "never scaled"
    );

    // The CLI speaks the same API.
    let pod = pods_of(&cluster(&server, &root).await, "product-api")[0].clone();
    let out = server.cli(
        &[
            "chaos",
            "crash-pod",
            &pod,
            "--url",
            &server.base,
            "--token",
            &root,
        ],
        None,
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), format!("pods/{pod} is crash-looping"));
    let objects = cluster(&server, &root).await;
    let crashed = objects.iter().find(|o| o["name"] == pod.as_str()).unwrap();
    assert_eq!(crashed["phase"], "CrashLoopBackOff");
    assert_eq!(deployment(&objects, "product-api")["ready"], 2);
    let out = server.cli(
        &[
            "chaos",
            "crash-pod",
            &pod,
            "--url",
            &server.base,
            "--token",
            &erin,
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(out.stderr.contains("(FORBIDDEN)"), "{}", out.stderr);
    assert!(
        audit_actions(&server, &root, &format!("cluster:{pod}"))
            .await
            .contains(&"cluster.chaos".to_owned())
    );
}

async fn interrupted_executions_end_failed_and_never_rerun(backend: Backend) {
    let server = TestServer::with_demo_topology(backend).await;
    let sam = server.signed_in("sam", "sre").await;
    let incident = incident(&server, &sam).await;
    let mut ids = Vec::new();
    for target in ["frontend", "order-api"] {
        let answer = propose(
            &server,
            &sam,
            &incident,
            json!({"kind": "restart_deployment", "target": target}),
        )
        .await;
        ids.push(
            answer["data"]["proposeAction"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // The process executing both stopped: one two hours ago, one just now.
    let db_backend = match backend {
        Backend::Sqlite => DatabaseBackend::Sqlite,
        Backend::Postgres => DatabaseBackend::Postgres,
    };
    let long_ago = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
    let now_sql = chrono::Utc::now().to_rfc3339();
    let cast = if backend == Backend::Postgres {
        "::timestamptz"
    } else {
        ""
    };
    for (id, at) in [(&ids[0], &long_ago), (&ids[1], &now_sql)] {
        let sql = format!(
            "UPDATE approvals SET status = 'EXECUTING', updated_at = '{at}'{cast} WHERE id = {id}"
        );
        server
            .state
            .db
            .execute_raw(Statement::from_string(db_backend, sql))
            .await
            .unwrap();
    }
    let approvals = &server.state.approvals;
    assert_eq!(approvals.fail_interrupted().await.unwrap(), 1);
    assert_eq!(approvals.fail_interrupted().await.unwrap(), 0);
    assert_eq!(get(&server, &sam, &ids[0]).await["status"], "FAILED");
    assert_eq!(get(&server, &sam, &ids[1]).await["status"], "EXECUTING");
    assert!(
        server
            .state
            .approvals
            .execute(ids[0].parse().unwrap())
            .await
            .is_err()
    );
    assert_eq!(
        audit_actions(&server, &sam, &format!("approval:{}", ids[0])).await,
        ["approval.proposed", "approval.failed"]
    );
}

/// A state written outside AWOOOI that is none of its values is never read as a default: the
/// read fails with an error naming the type, the value and the row.
async fn unknown_states_in_rows_fail_the_read_and_name_the_value(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.signed_in("alice", "devops").await;
    let incident_id = incident(&server, &token).await;
    let proposed = propose(
        &server,
        &token,
        &incident_id,
        json!({"kind": "scale_deployment", "target": "checkout", "params": {"replicas": 2}}),
    )
    .await;
    let approval_id: i32 = proposed["data"]["proposeAction"]["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("{proposed}"));
    let db = &server.state.db;
    db.execute_unprepared(&format!(
        "UPDATE approvals SET status = 'LIMBO' WHERE id = {approval_id}"
    ))
    .await
    .unwrap();
    let error = server
        .state
        .approvals
        .load(approval_id)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("unknown ApprovalStatus `LIMBO` in column `status`")
            && error.contains(&format!("of row {approval_id}")),
        "{error}"
    );
    let answer = server
        .graphql(
            Some(&token),
            "query($id: ID!) { approval(id: $id) { status } }",
            json!({"id": approval_id.to_string()}),
        )
        .await;
    assert_eq!(answer["data"], Value::Null, "{answer}");
    assert_eq!(
        answer["errors"][0]["extensions"]["code"], "INTERNAL_SERVER_ERROR",
        "{answer}"
    );

    let incident_id: i32 = incident_id.parse().unwrap();
    db.execute_unprepared(&format!(
        "UPDATE incidents SET status = 'PAUSED' WHERE id = {incident_id}"
    ))
    .await
    .unwrap();
    let error = entity::incident::Entity::find_by_id(incident_id)
        .one(db)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("unknown IncidentStatus `PAUSED` in column `status`")
            && error.contains(&format!("of row {incident_id}")),
        "{error}"
    );
}

/// `run_diagnostics` reads a workload: its dry-run passes for an existing deployment, it stays
/// LOW in a production namespace, so it runs at once, and its output describes the workload.
async fn diagnostics_pass_their_dry_run_and_run_at_once_as_low_risk(backend: Backend) {
    let server = TestServer::with_demo_topology(backend).await;
    let sam = server.signed_in("sam", "sre").await;
    let incident = incident(&server, &sam).await;
    let answer = propose(
        &server,
        &sam,
        &incident,
        json!({"kind": "run_diagnostics", "target": "order-api"}),
    )
    .await;
    let approval = &answer["data"]["proposeAction"];
    assert_eq!(approval["dryRun"]["passed"], true, "{answer}");
    assert_eq!(approval["action"]["namespace"], "prod", "{answer}");
    assert_eq!(approval["effectiveRisk"], "LOW", "{answer}");
    let id = approval["id"].as_str().unwrap();
    let done = settled(&server, &sam, id).await;
    assert_eq!(done["status"], "EXECUTED", "{done}");
    let output = done["execution"]["output"].as_str().unwrap_or_default();
    assert!(
        output.starts_with("deployments/order-api: 3/3 ready") && output.lines().count() == 4,
        "{output}"
    );
}
