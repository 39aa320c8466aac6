//! The audit trail end to end: events recorded for sign-ins and tokens, a chain that verifies,
//! and tampering in the database caught by `auditVerify` and `awoooi audit verify` — on SQLite
//! and PostgreSQL.

mod support;

use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use support::{Backend, TestServer};

on_both_backends!(edits_in_the_database_are_caught);

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
            "user.added"
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
        json!({"valid": true, "checked": 4, "firstBrokenId": null})
    );
    let cli = server.cli(&["audit", "verify"], None);
    assert!(cli.status.success(), "{}", cli.stderr);
    assert!(
        cli.stdout
            .contains("audit trail intact: 4 event(s) checked"),
        "{}",
        cli.stdout
    );

    // Someone edits a row directly in the database.
    let db = Database::connect(&server.database_url).await.unwrap();
    db.execute_unprepared("UPDATE audit_events SET actor = 'mallory' WHERE id = 2")
        .await
        .unwrap();
    let broken = server.graphql(Some(&token), verify, json!({})).await;
    assert_eq!(broken["data"]["auditVerify"]["valid"], false, "{broken}");
    assert_eq!(broken["data"]["auditVerify"]["firstBrokenId"], "2");
    let cli = server.cli(&["audit", "verify"], None);
    assert_eq!(cli.status.code(), Some(1));
    assert!(
        cli.stderr.contains("audit trail broken at event 2"),
        "{}",
        cli.stderr
    );

    // Removing the last event is a truncation the chain cannot see; removing one in the middle is caught.
    db.execute_unprepared("UPDATE audit_events SET actor = 'alice' WHERE id = 2")
        .await
        .unwrap();
    db.execute_unprepared("DELETE FROM audit_events WHERE id = 3")
        .await
        .unwrap();
    let gap: Value = server.graphql(Some(&token), verify, json!({})).await;
    assert_eq!(gap["data"]["auditVerify"]["firstBrokenId"], "4", "{gap}");
}
