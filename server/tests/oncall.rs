//! On-call work over GraphQL, on SQLite and PostgreSQL: acknowledge (the first stands, a
//! resolved incident refuses), assign (only to users), comment (with the incident's own
//! labels), the list's filters, the audit trail, the timeline, and live updates.

use crate::support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Backend, TestServer, next_data};

on_both_backends!(acknowledge_assign_and_comment_are_kept_audited_and_shown);

const SECRET_IP: &str = "10.44.0.17";

async fn mutate(server: &TestServer, token: &str, query: &str, variables: Value) -> Value {
    server.graphql(Some(token), query, variables).await
}

fn code(answer: &Value) -> &str {
    answer["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("none")
}

async fn listed(server: &TestServer, token: &str, filter: &str) -> Vec<String> {
    let answer = server
        .graphql(
            Some(token),
            &format!("{{ incidents({filter}) {{ edges {{ node {{ id }} }} }} }}"),
            json!({}),
        )
        .await;
    answer["data"]["incidents"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn acknowledge_assign_and_comment_are_kept_audited_and_shown(backend: Backend) {
    let server = TestServer::start(backend).await;
    let sam = server.signed_in("sam", "sre").await;
    let alice = server.signed_in("alice", "devops").await;
    let first = server
        .incident_from_alert(
            &sam,
            json!({"name": "PacketLoss", "service": "edge", "severity": "critical",
                "description": format!("loss towards {SECRET_IP}")}),
        )
        .await;
    let second = server
        .incident_from_alert(
            &sam,
            json!({"name": "DiskFull", "service": "batch", "severity": "warning"}),
        )
        .await;
    let mut updates = server
        .subscribe(
            &alice,
            "subscription { incidentUpdates { id acknowledgedBy } }",
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Acknowledge: the caller and the time; a second acknowledgement changes nothing.
    let ack = "mutation($i: ID!) { acknowledgeIncident(incidentId: $i) { acknowledgedBy acknowledgedAt } }";
    let answer = mutate(&server, &sam, ack, json!({"i": first})).await;
    assert_eq!(answer["errors"], Value::Null, "{answer}");
    let acked = &answer["data"]["acknowledgeIncident"];
    assert_eq!(acked["acknowledgedBy"], "sam");
    let at = acked["acknowledgedAt"].clone();
    assert!(at.is_string());
    let again = mutate(&server, &alice, ack, json!({"i": first})).await;
    assert_eq!(
        again["data"]["acknowledgeIncident"]["acknowledgedBy"],
        "sam"
    );
    assert_eq!(again["data"]["acknowledgeIncident"]["acknowledgedAt"], at);
    // Live: the subscriber sees it (after whatever the analyses published first).
    let mut heard = false;
    while let Some(live) = next_data(&mut updates, Duration::from_secs(10)).await {
        if live["incidentUpdates"]["id"] == first.as_str()
            && live["incidentUpdates"]["acknowledgedBy"] == "sam"
        {
            heard = true;
            break;
        }
    }
    assert!(heard, "the acknowledgement never reached the subscriber");
    let missing = mutate(&server, &sam, ack, json!({"i": "999999"})).await;
    assert_eq!(code(&missing), "NOT_FOUND", "{missing}");

    // Assign: only to a user; null unassigns.
    let assign = "mutation($i: ID!, $a: String) { assignIncident(incidentId: $i, assignee: $a) { assignee } }";
    let nobody = mutate(&server, &sam, assign, json!({"i": first, "a": "mallory"})).await;
    assert_eq!(code(&nobody), "BAD_USER_INPUT", "{nobody}");
    assert!(
        nobody["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("`mallory` is not a user")
    );
    for (incident, who) in [(&first, "alice"), (&second, "sam"), (&second, "alice")] {
        let answer = mutate(&server, &sam, assign, json!({"i": incident, "a": who})).await;
        assert_eq!(
            answer["data"]["assignIncident"]["assignee"], who,
            "{answer}"
        );
    }
    let answer = mutate(&server, &sam, assign, json!({"i": second, "a": null})).await;
    assert_eq!(answer["data"]["assignIncident"]["assignee"], Value::Null);

    // The list filters.
    assert_eq!(
        listed(&server, &sam, "assignee: \"alice\"").await,
        vec![first.clone()]
    );
    assert_eq!(
        listed(&server, &sam, "acknowledged: true").await,
        vec![first.clone()]
    );
    assert_eq!(
        listed(&server, &sam, "acknowledged: false").await,
        vec![second.clone()]
    );
    assert!(listed(&server, &sam, "assignee: \"sam\"").await.is_empty());

    // Comment: raw values become the incident's own labels; empty or huge bodies refused.
    let comment = "mutation($i: ID!, $b: String!) { commentOnIncident(incidentId: $i, body: $b) { author body } }";
    let body = format!("**Checked** the route to {SECRET_IP}: a flapping link.");
    let answer = mutate(&server, &alice, comment, json!({"i": first, "b": body})).await;
    assert_eq!(answer["errors"], Value::Null, "{answer}");
    let stored = answer["data"]["commentOnIncident"]["body"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!stored.contains(SECRET_IP), "{stored}");
    let view = server
        .graphql(
            Some(&sam),
            "query($i: ID!) { incident(id: $i) { alerts { annotations } comments { author body } } }",
            json!({"i": first}),
        )
        .await;
    let description = view["data"]["incident"]["alerts"][0]["annotations"]["description"]
        .as_str()
        .unwrap()
        .to_owned();
    let label = description.trim_start_matches("loss towards ").to_owned();
    assert!(label.starts_with("[IP_"), "{description}");
    assert_eq!(
        stored,
        format!("**Checked** the route to {label}: a flapping link."),
        "the same address gets the label the alert has"
    );
    assert_eq!(
        view["data"]["incident"]["comments"],
        json!([{"author": "alice", "body": stored}])
    );
    for (bad, said) in [
        ("  ".to_owned(), "comment body is empty"),
        ("x".repeat(10_001), "at most 10000"),
    ] {
        let answer = mutate(&server, &alice, comment, json!({"i": first, "b": bad})).await;
        assert_eq!(code(&answer), "BAD_USER_INPUT", "{answer}");
        assert!(
            answer["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains(said)
        );
    }

    // Audited, and in the timeline with who did it.
    let trail = server
        .graphql(
            Some(&sam),
            "{ auditEvents(first: 100) { edges { node { actor action subject } } } }",
            json!({}),
        )
        .await;
    let steps: Vec<(String, String)> = trail["data"]["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .filter(|n| n["subject"] == format!("incident:{first}") && n["actor"] != "system")
        .map(|n| {
            (
                n["actor"].as_str().unwrap().to_owned(),
                n["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut steps = steps;
    steps.sort();
    assert_eq!(
        steps,
        [
            ("alice".to_owned(), "incident.commented".to_owned()),
            ("sam".to_owned(), "incident.acknowledged".to_owned()),
            ("sam".to_owned(), "incident.assigned".to_owned()),
        ]
    );
    let timeline = server
        .graphql(
            Some(&sam),
            "query($i: ID!) { incident(id: $i) { timeline(first: 100) { edges { node { kind actor text } } } } }",
            json!({"i": first}),
        )
        .await;
    let entries: Vec<Value> = timeline["data"]["incident"]["timeline"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .filter(|n| {
            ["ACKNOWLEDGED", "ASSIGNED", "COMMENTED"].contains(&n["kind"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        entries,
        [
            json!({"kind": "ACKNOWLEDGED", "actor": "sam", "text": "acknowledged by sam"}),
            json!({"kind": "ASSIGNED", "actor": "sam", "text": "assigned to alice"}),
            json!({"kind": "COMMENTED", "actor": "alice", "text": format!("commented: {stored}")}),
        ]
    );

    // A resolved incident has nothing to acknowledge.
    server
        .incident_from_alert(
            &sam,
            json!({"name": "DiskFull", "service": "batch", "severity": "warning", "status": "resolved"}),
        )
        .await;
    let mut status = Value::Null;
    for _ in 0..100 {
        let answer = server
            .graphql(
                Some(&sam),
                "query($i: ID!) { incident(id: $i) { status } }",
                json!({"i": second}),
            )
            .await;
        status = answer["data"]["incident"]["status"].clone();
        if status == "RESOLVED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "RESOLVED");
    let resolved = mutate(&server, &sam, ack, json!({"i": second})).await;
    assert_eq!(code(&resolved), "CONFLICT", "{resolved}");
    assert!(
        resolved["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("is RESOLVED")
    );
}
