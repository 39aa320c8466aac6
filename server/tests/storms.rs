//! Alert storms through the real pipeline, on SQLite and PostgreSQL: one incident per root
//! cause along the topology, merges seen live by a WebSocket subscriber, flapping, the window
//! and label boundaries.

use crate::support;

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use support::{Backend, TestServer};
use tokio_tungstenite::tungstenite::Message;

on_both_backends!(
    a_cascade_under_one_database_is_one_incident_that_says_why,
    a_cascade_in_one_request_merges_alerts_not_yet_written,
    two_independent_failures_stay_two_incidents,
    late_evidence_merges_losing_nothing_and_subscribers_see_it,
    a_flapping_alert_stays_in_its_incident,
    an_expired_window_opens_a_new_incident,
    label_boundaries_keep_incidents_apart,
);

/// Two branches with no shared ancestor within 3 hops.
const TOPOLOGY: &str = r#"
services:
  - { name: ingress, kind: INGRESS, depends_on: [frontend] }
  - { name: frontend, kind: SERVICE, depends_on: [auth-service, order-api] }
  - { name: auth-service, kind: SERVICE, depends_on: [postgres-db] }
  - { name: order-api, kind: SERVICE, depends_on: [postgres-db] }
  - { name: postgres-db, kind: DATABASE }
  - { name: billing-api, kind: SERVICE, depends_on: [billing-cache] }
  - { name: report-api, kind: SERVICE, depends_on: [billing-cache] }
  - { name: billing-cache, kind: CACHE }
"#;

async fn server(backend: Backend) -> (TestServer, String) {
    let path =
        std::env::temp_dir().join(format!("awoooi-storm-{:016x}.yaml", rand::random::<u64>()));
    std::fs::write(&path, TOPOLOGY).unwrap();
    let server = TestServer::start_with(backend, &["--topology", path.to_str().unwrap()]).await;
    std::fs::remove_file(path).unwrap();
    let token = server.signed_in("sam", "sre").await;
    (server, token)
}

/// Posts one alert (generic webhook); returns its incident.
async fn alert(server: &TestServer, token: &str, alert: Value) -> String {
    server.incident_from_alert(token, alert).await
}

/// Posts several alerts in one request (generic webhook); returns the receipt.
async fn alerts(server: &TestServer, token: &str, alerts: Value) -> Value {
    server.post_alerts(token, alerts).await
}

fn firing(name: &str, service: &str, namespace: &str) -> Value {
    json!({"name": name, "service": service, "severity": "critical",
           "labels": {"namespace": namespace}})
}

const INCIDENT: &str = "id status service alertCount mergedInto mergedFrom
    alerts { service name status annotations count }
    approvals { id action { target } }
    thinking { kind text }";

async fn incident(server: &TestServer, token: &str, id: &str) -> Value {
    let answer = server
        .graphql(
            Some(token),
            &format!("query($id: ID!) {{ incident(id: $id) {{ {INCIDENT} }} }}"),
            json!({"id": id}),
        )
        .await;
    assert_eq!(answer["errors"], Value::Null, "{answer}");
    answer["data"]["incident"].clone()
}

/// Waits until the incident's thinking stream holds a line containing `needle`.
async fn says(server: &TestServer, token: &str, id: &str, needle: &str) -> Value {
    for _ in 0..200 {
        let found = incident(server, token, id).await;
        if found["thinking"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["text"].as_str().unwrap().contains(needle))
        {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "incident {id} never said {needle:?}: {:#}",
        incident(server, token, id).await["thinking"]
    );
}

async fn a_cascade_under_one_database_is_one_incident_that_says_why(backend: Backend) {
    let (server, token) = server(backend).await;
    // The symptoms first, the cause last: order-api is no dependency of what is already
    // known to be a root there, so it opens an incident of its own until postgres-db reveals
    // the shared cause and that incident merges.
    let first = alert(&server, &token, firing("HighErrorRate", "frontend", "prod")).await;
    let mut receipts = Vec::new();
    for (name, service) in [
        ("HighLatency", "auth-service"),
        ("HighLatency", "order-api"),
        ("5xx", "ingress"),
        ("ConnectionsExhausted", "postgres-db"),
        ("QueueDepth", "order-api"),
    ] {
        receipts.push(alert(&server, &token, firing(name, service, "prod")).await);
    }
    let second = receipts[1].clone();
    assert_ne!(second, first);
    assert!(
        receipts
            .iter()
            .enumerate()
            .all(|(i, r)| i == 1 || *r == first),
        "{receipts:?}"
    );
    // A repeat is counted, not a new alert.
    alert(&server, &token, firing("5xx", "ingress", "prod")).await;
    let found = says(
        &server,
        &token,
        &first,
        "Root cause is now postgres-db (DATABASE)",
    )
    .await;
    assert_eq!(found["service"], "postgres-db");
    assert_eq!(found["alerts"].as_array().unwrap().len(), 6);
    assert_eq!(found["alertCount"], 7);
    says(
        &server,
        &token,
        &first,
        "frontend depends on auth-service: auth-service is a root-cause candidate of this incident",
    )
    .await;
    says(
        &server,
        &token,
        &first,
        "ingress depends on auth-service, which is this incident's root cause",
    )
    .await;
    says(&server, &token, &first, "auth-service depends on postgres-db: postgres-db is a root-cause candidate of this incident").await;
    says(
        &server,
        &token,
        &first,
        &format!("Merged incident #{second} into this one"),
    )
    .await;
    let list = server
        .graphql(
            Some(&token),
            "{ incidents(first: 10) { edges { node { id status alertCount mergedInto } } } }",
            json!({}),
        )
        .await;
    let nodes: Vec<&Value> = list["data"]["incidents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .collect();
    assert_eq!(nodes.len(), 2, "{list}");
    let merged = nodes.iter().find(|n| n["id"] == second).unwrap();
    assert_eq!(merged["status"], "MERGED");
    assert_eq!(merged["mergedInto"], first);
    assert_eq!(merged["alertCount"], 0);
    let survivor = nodes.iter().find(|n| n["id"] == first).unwrap();
    assert_eq!(survivor["alertCount"], 7, "every alert in the one incident");
}

/// The same cascade as one request, so one group plans it all: the incident order-api opens
/// is merged before its alert is written, and that alert still moves, relabelled with the
/// survivor's pseudonyms (the address both alerts name gets one label).
async fn a_cascade_in_one_request_merges_alerts_not_yet_written(backend: Backend) {
    let (server, token) = server(backend).await;
    let with_note = |name: &str, service: &str, description: &str| {
        let mut alert = firing(name, service, "prod");
        alert["annotations"] = json!({ "description": description });
        alert
    };
    let batch = json!([
        with_note("HighErrorRate", "frontend", "upstream 10.9.8.7 timed out"),
        firing("HighLatency", "auth-service", "prod"),
        with_note("HighLatency", "order-api", "10.0.0.2 cannot reach 10.9.8.7"),
        firing("5xx", "ingress", "prod"),
        firing("ConnectionsExhausted", "postgres-db", "prod"),
        firing("QueueDepth", "order-api", "prod"),
        firing("5xx", "ingress", "prod"),
    ]);
    let receipt = alerts(&server, &token, batch).await;
    let touched: Vec<&str> = receipt["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap())
        .collect();
    assert_eq!(
        touched.len(),
        2,
        "the survivor and the merged one: {receipt}"
    );
    let (first, second) = (touched[0], touched[1]);
    let found = says(
        &server,
        &token,
        first,
        &format!("Merged incident #{second} into this one (1 alert(s) moved)"),
    )
    .await;
    assert_eq!(found["service"], "postgres-db");
    assert_eq!(found["alerts"].as_array().unwrap().len(), 6, "{found}");
    assert_eq!(found["alertCount"], 7);
    let merged = incident(&server, &token, second).await;
    assert_eq!(merged["status"], "MERGED");
    assert_eq!(merged["mergedInto"], first);
    assert_eq!(merged["alertCount"], 0);

    let description = |service: &str, name: &str| {
        found["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["service"] == service && a["name"] == name)
            .map(|a| a["annotations"]["description"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let upstream = description("frontend", "HighErrorRate");
    let label = upstream
        .strip_prefix("upstream ")
        .and_then(|rest| rest.strip_suffix(" timed out"))
        .unwrap();
    assert!(label.starts_with("[IP_"), "{upstream}");
    let moved = description("order-api", "HighLatency");
    let (caller, callee) = moved.split_once(" cannot reach ").unwrap();
    assert_eq!(
        callee, label,
        "one address, one label in the survivor: {moved}"
    );
    assert!(caller.starts_with("[IP_") && caller != label, "{moved}");
}

async fn two_independent_failures_stay_two_incidents(backend: Backend) {
    let (server, token) = server(backend).await;
    let db = alert(&server, &token, firing("Down", "postgres-db", "prod")).await;
    let cache = alert(
        &server,
        &token,
        firing("Evictions", "billing-cache", "prod"),
    )
    .await;
    assert_ne!(db, cache);
    for (service, expected) in [
        ("order-api", &db),
        ("report-api", &cache),
        ("auth-service", &db),
        ("billing-api", &cache),
        ("frontend", &db),
    ] {
        let joined = alert(&server, &token, firing("Errors", service, "prod")).await;
        assert_eq!(&joined, expected, "{service}");
    }
    assert_eq!(
        incident(&server, &token, &db).await["service"],
        "postgres-db"
    );
    assert_eq!(
        incident(&server, &token, &cache).await["service"],
        "billing-cache"
    );
}

async fn late_evidence_merges_losing_nothing_and_subscribers_see_it(backend: Backend) {
    let (server, token) = server(backend).await;
    let mut socket = server
        .subscribe(
            &token,
            "subscription { incidentUpdates { id status mergedInto } }",
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Two incidents that do not know yet that they share a cause, with the same address in
    // both (each labels it on its own).
    let older = alert(
        &server,
        &token,
        json!({"name": "SlowLogins", "service": "auth-service", "severity": "warning",
               "labels": {"namespace": "prod"}, "annotations": {"summary": "pool at 10.9.9.9 slow"}}),
    )
    .await;
    let newer = alert(
        &server,
        &token,
        json!({"name": "SlowOrders", "service": "order-api", "severity": "critical",
               "labels": {"namespace": "prod"},
               "annotations": {"summary": "from 10.7.7.7 via 10.9.9.9"}}),
    )
    .await;
    assert_ne!(older, newer);
    let proposed = server
        .graphql(
            Some(&token),
            "mutation($i: ID!, $a: ActionInput!) { proposeAction(incidentId: $i, action: $a) { id } }",
            json!({"i": newer, "a": {"kind": "restart_deployment", "target": "order-api", "rationale": "slow"}}),
        )
        .await;
    assert_eq!(proposed["errors"], Value::Null, "{proposed}");
    let approval = proposed["data"]["proposeAction"]["id"].clone();

    // The database alerts: both incidents depend on it. The newer merges into the older.
    let joined = alert(&server, &token, firing("Down", "postgres-db", "prod")).await;
    assert_eq!(joined, older);
    let merged = loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("an update within 10 s")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = message {
            let value: Value = serde_json::from_str(&text).unwrap();
            let update = &value["payload"]["data"]["incidentUpdates"];
            if update["status"] == "MERGED" {
                break update.clone();
            }
        }
    };
    assert_eq!(merged["id"], newer);
    assert_eq!(merged["mergedInto"], older);

    let survivor = says(
        &server,
        &token,
        &older,
        &format!("Merged incident #{newer} into this one (1 alert(s) moved)"),
    )
    .await;
    assert_eq!(survivor["service"], "postgres-db");
    assert_eq!(survivor["mergedFrom"], json!([newer]));
    let alerts = survivor["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 3, "{survivor:#}");
    // The moved alert speaks the survivor's labels: 10.9.9.9 is [IP_1] here, as before.
    assert_eq!(alerts[0]["annotations"]["summary"], "pool at [IP_1] slow");
    assert_eq!(
        alerts[1]["annotations"]["summary"],
        "from [IP_2] via [IP_1]"
    );
    assert!(
        survivor["approvals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == approval),
        "the merged incident's approval is kept and listed: {survivor:#}"
    );
    // The merged incident's approval, signed and executed, moves the survivor.
    let bob = server.signed_in("bob", "sre").await;
    server.approve(&bob, approval.as_str().unwrap()).await;
    let done = server
        .settled_approval(&token, approval.as_str().unwrap(), "status")
        .await;
    assert_eq!(done["status"], "EXECUTED", "{done}");
    assert_eq!(
        incident(&server, &token, &older).await["status"],
        "MITIGATING"
    );
    let gone = incident(&server, &token, &newer).await;
    assert_eq!(gone["status"], "MERGED");
    assert_eq!(gone["mergedInto"], older);
    assert_eq!(gone["alerts"], json!([]));
    says(
        &server,
        &token,
        &newer,
        &format!("Merged into incident #{older}"),
    )
    .await;
    // Nothing raw anywhere.
    let dump = server.dump_text_columns().await;
    assert!(!dump.contains("10.9.9.9") && !dump.contains("10.7.7.7"));
}

async fn a_flapping_alert_stays_in_its_incident(backend: Backend) {
    let (server, token) = server(backend).await;
    let mut flap = json!({"name": "Down", "service": "postgres-db", "severity": "critical",
                          "labels": {"namespace": "prod"}, "fingerprint": "pg-down"});
    let id = alert(&server, &token, flap.clone()).await;
    flap["status"] = json!("resolved");
    alert(&server, &token, flap.clone()).await;
    assert_eq!(incident(&server, &token, &id).await["status"], "RESOLVED");
    // It fires again, and in the same request another alert on its service: both go to the
    // reopened incident (no twin is opened beside it).
    flap["status"] = json!("firing");
    let both = json!([flap, {"name": "SlowQueries", "service": "postgres-db",
        "severity": "warning", "labels": {"namespace": "prod"}}]);
    let receipt = alerts(&server, &token, both).await;
    assert_eq!(
        receipt["incidents"],
        json!([id]),
        "the same incident, reopened"
    );
    let found = says(
        &server,
        &token,
        &id,
        "fired again within the correlation window: flapping",
    )
    .await;
    assert_ne!(found["status"], "RESOLVED");
    assert_eq!(found["alerts"].as_array().unwrap().len(), 2);
    assert_eq!(found["alerts"][0]["status"], "FIRING");
    assert_eq!(found["alerts"][0]["count"], 2);
}

async fn an_expired_window_opens_a_new_incident(backend: Backend) {
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let (server, token) = server(backend).await;
    let first = alert(&server, &token, firing("Down", "postgres-db", "prod")).await;
    // Twenty minutes pass (the window is 15).
    let past = chrono::Utc::now() - chrono::Duration::minutes(20);
    entity::incident::Entity::update_many()
        .col_expr(entity::incident::Column::LastAlertAt, Expr::value(past))
        .filter(entity::incident::Column::Id.eq(first.parse::<i32>().unwrap()))
        .exec(&server.state.db)
        .await
        .unwrap();
    let later = alert(&server, &token, firing("Errors", "order-api", "prod")).await;
    assert_ne!(later, first);
    // auth-service, a sibling of order-api with only the expired database between them,
    // opens its own; frontend depends on both roots and joins the older.
    let sibling = alert(&server, &token, firing("Errors", "auth-service", "prod")).await;
    assert_ne!(sibling, later);
    assert_ne!(sibling, first);
    let within = alert(&server, &token, firing("Errors", "frontend", "prod")).await;
    assert_eq!(within, later, "the newer incidents take what follows");
}

async fn label_boundaries_keep_incidents_apart(backend: Backend) {
    let (server, token) = server(backend).await;
    let prod = alert(&server, &token, firing("Down", "postgres-db", "prod")).await;
    let staging = alert(&server, &token, firing("Errors", "order-api", "staging")).await;
    assert_ne!(prod, staging, "another namespace");
    let other_cluster = alert(
        &server,
        &token,
        json!({"name": "Errors", "service": "auth-service", "severity": "critical",
               "labels": {"namespace": "prod", "cluster": "eu-2"}}),
    )
    .await;
    assert_ne!(other_cluster, prod, "another cluster");
    let same = alert(&server, &token, firing("Errors", "auth-service", "prod")).await;
    assert_eq!(same, prod);
}
