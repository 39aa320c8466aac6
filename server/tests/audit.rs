//! The audit trail end to end: events recorded for sign-ins and tokens, a chain that verifies,
//! and tampering in the database caught by `auditVerify` and `awoooi audit verify` — on SQLite
//! and PostgreSQL.

use crate::support;

use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use support::{Backend, TestServer};

on_both_backends!(
    edits_in_the_database_are_caught,
    policy_changes_between_restarts_are_recorded
);

async fn edits_in_the_database_are_caught(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.signed_in("alice", "devops").await;
    let created = server.cli(&["token", "create", "ci", "--role", "sre"], None);
    assert!(created.status.success(), "{}", created.stderr);
    let failed = server
        .graphql(
            None,
            "mutation { login(username: \"alice\", password: \"wrong password\") { token } }",
            json!({}),
        )
        .await;
    assert_eq!(failed["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");

    let trail = server
        .graphql(Some(&token), "{ auditEvents(first: 10) { totalCount edges { node { id actor action subject prevHash hash } } } }", json!({}))
        .await;
    let events = trail["data"]["auditEvents"]["edges"].as_array().unwrap();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["node"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "user.login_failed",
            "token.created",
            "user.login",
            "user.added",
            "config.policy"
        ],
        "{trail}"
    );
    assert_eq!(events[2]["node"]["actor"], "alice");
    // Newest first; each links to the one before.
    assert_eq!(events[0]["node"]["prevHash"], events[1]["node"]["hash"]);

    let verify = "{ auditVerify { valid checked firstBrokenId } }";
    let ok = server.graphql(Some(&token), verify, json!({})).await;
    assert_eq!(
        ok["data"]["auditVerify"],
        json!({"valid": true, "checked": 5, "firstBrokenId": null})
    );
    let cli = server.cli(&["audit", "verify"], None);
    assert!(cli.status.success(), "{}", cli.stderr);
    assert!(
        cli.stdout
            .contains("audit trail intact: 5 event(s) checked"),
        "{}",
        cli.stdout
    );

    // Someone edits a row directly in the database.
    let db = Database::connect(&server.database_url).await.unwrap();
    db.execute_unprepared("UPDATE audit_events SET actor = 'mallory' WHERE id = 3")
        .await
        .unwrap();
    let broken = server.graphql(Some(&token), verify, json!({})).await;
    assert_eq!(broken["data"]["auditVerify"]["valid"], false, "{broken}");
    assert_eq!(broken["data"]["auditVerify"]["firstBrokenId"], "3");
    let cli = server.cli(&["audit", "verify"], None);
    assert_eq!(cli.status.code(), Some(1));
    assert!(
        cli.stderr.contains("audit trail broken at event 3"),
        "{}",
        cli.stderr
    );

    // Removing the last event is a truncation the chain cannot see; removing one in the middle is caught.
    db.execute_unprepared("UPDATE audit_events SET actor = 'alice' WHERE id = 3")
        .await
        .unwrap();
    db.execute_unprepared("DELETE FROM audit_events WHERE id = 4")
        .await
        .unwrap();
    let gap: Value = server.graphql(Some(&token), verify, json!({})).await;
    assert_eq!(gap["data"]["auditVerify"]["firstBrokenId"], "5", "{gap}");
}

async fn policy_changes_between_restarts_are_recorded(backend: Backend) {
    let server = TestServer::start(backend).await;
    let db = &server.state.db;
    let config = (*server.state.config).clone();
    // The same policy again (a restart) is not a change.
    assert!(
        !server::base::audit::record_policy(db, config.approvals.audit_details())
            .await
            .unwrap()
    );
    let mut changed = config.approvals.clone();
    changed
        .policy
        .risks
        .insert("restart_deployment".into(), engine::policy::RiskLevel::High);
    assert!(
        server::base::audit::record_policy(db, changed.audit_details())
            .await
            .unwrap()
    );
    let token = server.signed_in("alice", "devops").await;
    let trail = server
        .graphql(
            Some(&token),
            "{ auditEvents(first: 10) { edges { node { action details } } } }",
            json!({}),
        )
        .await;
    let policies: Vec<&Value> = trail["data"]["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .filter(|n| n["action"] == "config.policy")
        .collect();
    assert_eq!(policies.len(), 2, "{trail}");
    assert_eq!(
        policies[0]["details"]["policy"]["risks"]["restart_deployment"],
        "HIGH"
    );
    assert_eq!(
        policies[1]["details"]["policy"]["risks"]["restart_deployment"],
        "MEDIUM"
    );
}
