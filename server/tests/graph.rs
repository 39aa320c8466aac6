//! GraphRAG over GraphQL: the demo topology, live health from firing alerts, blast radius and
//! ranked root causes — on SQLite and on PostgreSQL.

use crate::support;

use serde_json::{Value, json};
use support::{Backend, TestServer};

on_both_backends!(
    the_seeds_3am_scenario,
    topology_errors_have_codes,
    incidents_are_analysed_when_they_open,
    thinking_replays_then_streams_live_exactly_once,
);

async fn fire(server: &TestServer, token: &str, name: &str, service: &str, severity: &str) {
    let body = json!({"name": name, "service": service, "severity": severity}).to_string();
    let response = server
        .post_json("/api/v1/alerts/webhook", Some(token), &[], body)
        .await;
    assert_eq!(response.status(), 202);
}

async fn the_seeds_3am_scenario(backend: Backend) {
    let server = TestServer::with_demo_topology(backend).await;
    let token = server.signed_in("alice", "devops").await;
    fire(
        &server,
        &token,
        "frontend 5xx rate > 15%",
        "frontend",
        "critical",
    )
    .await;
    fire(
        &server,
        &token,
        "ConnectionsExhausted",
        "postgres-db",
        "critical",
    )
    .await;

    let query = "{ rootCauses(service: \"frontend\") { service kind depth health rank }
        blastRadius(service: \"frontend\") { target maxDepth affected { service kind depth } }
        topology { services { name kind healthy } edges { from to } } }";
    let answer = server.graphql(Some(&token), query, json!({})).await;
    assert_eq!(answer["errors"], Value::Null, "{answer}");
    let data = &answer["data"];
    assert_eq!(
        data["rootCauses"],
        json!([{"service": "postgres-db", "kind": "DATABASE", "depth": 2, "health": "UNHEALTHY", "rank": 1}])
    );
    assert_eq!(
        data["blastRadius"],
        json!({"target": "frontend", "maxDepth": 3,
               "affected": [{"service": "ingress", "kind": "INGRESS", "depth": 1}]})
    );
    let services = data["topology"]["services"].as_array().unwrap();
    assert_eq!(services.len(), 8);
    let unhealthy: Vec<&str> = services
        .iter()
        .filter(|s| s["healthy"] == false)
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(unhealthy, ["frontend", "postgres-db"]);
    assert!(
        data["topology"]["edges"]
            .as_array()
            .unwrap()
            .contains(&json!({"from": "ingress", "to": "frontend"}))
    );

    // A second unhealthy dependency: both are returned, the database first.
    fire(&server, &token, "CacheEvictions", "redis-cache", "warning").await;
    let ranked = server
        .graphql(
            Some(&token),
            "{ rootCauses(service: \"frontend\") { service rank } }",
            json!({}),
        )
        .await;
    assert_eq!(
        ranked["data"]["rootCauses"],
        json!([{"service": "postgres-db", "rank": 1}, {"service": "redis-cache", "rank": 2}])
    );
}

async fn topology_errors_have_codes(backend: Backend) {
    let server = TestServer::with_demo_topology(backend).await;
    let token = server.signed_in("erin", "viewer").await;
    for (query, code) in [
        ("{ rootCauses(service: \"nope\") { service } }", "NOT_FOUND"),
        ("{ blastRadius(service: \"nope\") { target } }", "NOT_FOUND"),
        (
            "{ rootCauses(service: \"frontend\", maxDepth: 0) { service } }",
            "BAD_USER_INPUT",
        ),
        (
            "{ blastRadius(service: \"frontend\", maxDepth: 11) { target } }",
            "BAD_USER_INPUT",
        ),
    ] {
        let answer = server.graphql(Some(&token), query, json!({})).await;
        assert_eq!(
            answer["errors"][0]["extensions"]["code"], code,
            "{query}: {answer}"
        );
    }
    let anonymous = server
        .graphql(None, "{ topology { edges { from } } }", json!({}))
        .await;
    assert_eq!(
        anonymous["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
}

const ANALYSIS: &str = "query($id: ID!) { incident(id: $id) { status service
    analysis { brain summary confidence rootCauses { service rank } blastRadius { target affected { service depth } }
      proposal { rootCause confidence actions { kind target rationale } } }
    thinking { seq kind text } } }";

/// Waits until an analysis run has finished (the worker runs in the background): the incident
/// has an analysis and the run's thinking, is no longer ANALYZING, and reads the same twice in
/// a row (one query reads the status before the analysis, so a single read can straddle a run).
async fn analysed(server: &TestServer, token: &str, id: &str) -> Value {
    let mut previous: Option<Value> = None;
    for _ in 0..200 {
        let answer = server
            .graphql(Some(token), ANALYSIS, json!({"id": id}))
            .await;
        let incident = answer["data"]["incident"].clone();
        let thought = incident["thinking"]
            .as_array()
            .is_some_and(|t| !t.is_empty());
        let finished =
            incident["analysis"].is_object() && thought && incident["status"] != "ANALYZING";
        if finished && previous.as_ref() == Some(&incident) {
            return incident;
        }
        previous = finished.then_some(incident);
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("incident {id} was not analysed");
}

async fn first_incident(server: &TestServer, token: &str, name: &str, service: &str) -> String {
    let body = json!({"name": name, "service": service, "severity": "critical",
        "description": "user 10.1.2.3 got 502"})
    .to_string();
    let response = server
        .post_json("/api/v1/alerts/webhook", Some(token), &[], body)
        .await;
    assert_eq!(response.status(), 202);
    response.json::<Value>().await.unwrap()["incidents"][0]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn incidents_are_analysed_when_they_open(backend: Backend) {
    let server = TestServer::with_demo_topology(backend).await;
    let token = server.signed_in("bob", "sre").await;
    // The database alerts in another namespace: its own incident (correlation keeps
    // namespaces apart), but still an unhealthy dependency of the frontend.
    let body = json!({"name": "ConnectionsExhausted", "service": "postgres-db",
        "severity": "critical", "labels": {"namespace": "dr-site"}});
    let response = server
        .post_json(
            "/api/v1/alerts/webhook",
            Some(&token),
            &[],
            body.to_string(),
        )
        .await;
    assert_eq!(response.status(), 202);
    let id = first_incident(&server, &token, "FrontendOOMKilled", "frontend").await;
    let incident = analysed(&server, &token, &id).await;
    assert_eq!(incident["status"], "AWAITING_APPROVAL", "{incident}");
    let analysis = &incident["analysis"];
    assert_eq!(analysis["brain"], "rules");
    // The analysis describes the incident's own root cause first; the other namespace's
    // database follows as a further unhealthy dependency.
    assert_eq!(incident["service"], "frontend");
    assert_eq!(
        analysis["rootCauses"],
        json!([{"service": "frontend", "rank": 1}, {"service": "postgres-db", "rank": 2}])
    );
    assert_eq!(
        analysis["blastRadius"],
        json!({"target": "frontend", "affected": [{"service": "ingress", "depth": 1}]})
    );
    assert_eq!(analysis["proposal"]["rootCause"], "frontend");
    assert_eq!(
        analysis["proposal"]["actions"][0]["kind"],
        "scale_deployment"
    );
    assert_eq!(analysis["proposal"]["actions"][0]["target"], "frontend");
    let thinking = incident["thinking"].as_array().unwrap();
    let seqs: Vec<i64> = thinking
        .iter()
        .map(|t| t["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=thinking.len() as i64).collect::<Vec<_>>());
    assert_eq!(thinking.last().unwrap()["kind"], "CONCLUSION");
    // The Brain saw only pseudonymised text.
    let said: String = thinking
        .iter()
        .map(|t| t["text"].as_str().unwrap())
        .collect();
    assert!(!said.contains("10.1.2.3"), "{said}");

    // On demand: runs again, numbering continues.
    let again = server
        .graphql(
            Some(&token),
            "mutation($id: ID!) { analyzeIncident(id: $id) { status thinking { seq } } }",
            json!({"id": id}),
        )
        .await;
    let seqs = again["data"]["analyzeIncident"]["thinking"]
        .as_array()
        .unwrap();
    assert_eq!(seqs.len(), thinking.len() * 2, "{again}");
    let missing = server
        .graphql(
            Some(&token),
            "mutation { analyzeIncident(id: \"999\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(missing["errors"][0]["extensions"]["code"], "NOT_FOUND");
}

async fn thinking_replays_then_streams_live_exactly_once(backend: Backend) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
    let server = TestServer::with_demo_topology(backend).await;
    let token = server.signed_in("bob", "sre").await;
    let id = first_incident(&server, &token, "OOMKilled", "order-api").await;
    let first = analysed(&server, &token, &id).await["thinking"]
        .as_array()
        .unwrap()
        .len();

    let mut request = server.ws_url().into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let text = |v: Value| Message::text(v.to_string());
    socket
        .send(text(
            json!({"type": "connection_init", "payload": {"token": token}}),
        ))
        .await
        .unwrap();
    socket
        .send(text(json!({"id": "t", "type": "subscribe", "payload": {
            "query": "subscription($id: ID!) { thinking(incidentId: $id) { seq kind text } }",
            "variables": {"id": id}}})))
        .await
        .unwrap();
    // Mid-stream: a new analysis starts while the replay is being delivered.
    let trigger = {
        let (base, token, id) = (server.base.clone(), token.clone(), id.clone());
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!("{base}/graphql"))
                .bearer_auth(token)
                .json(
                    &json!({"query": "mutation($id: ID!) { analyzeIncident(id: $id) { id } }",
                    "variables": {"id": id}}),
                )
                .send()
                .await
                .unwrap()
        })
    };
    let mut seqs = Vec::new();
    while seqs.len() < first * 2 {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("thinking events keep coming")
            .unwrap()
            .unwrap();
        if let Message::Text(raw) = message {
            let value: Value = serde_json::from_str(&raw).unwrap();
            if value["type"] == "next" {
                seqs.push(
                    value["payload"]["data"]["thinking"]["seq"]
                        .as_i64()
                        .unwrap(),
                );
            }
        }
    }
    assert_eq!(
        seqs,
        (1..=(first * 2) as i64).collect::<Vec<_>>(),
        "every event once, in order"
    );
    assert_eq!(trigger.await.unwrap().status(), 200);
    // Nothing more arrives after the last event.
    let extra = tokio::time::timeout(std::time::Duration::from_millis(300), socket.next()).await;
    assert!(extra.is_err(), "unexpected extra message: {extra:?}");
}
