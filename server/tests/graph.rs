//! GraphRAG over GraphQL: the demo topology, live health from firing alerts, blast radius and
//! ranked root causes — on SQLite and on PostgreSQL.

mod support;

use serde_json::{Value, json};
use support::{Backend, TestServer};

on_both_backends!(the_seeds_3am_scenario, topology_errors_have_codes,);

async fn with_demo_topology(backend: Backend) -> TestServer {
    let path = std::env::temp_dir().join(format!("awoooi-topology-{}.yaml", rand::random::<u64>()));
    std::fs::write(&path, engine::topology::DEMO_YAML).unwrap();
    let server = TestServer::start_with(backend, &["--topology", path.to_str().unwrap()]).await;
    std::fs::remove_file(path).unwrap();
    server
}

async fn fire(server: &TestServer, token: &str, name: &str, service: &str, severity: &str) {
    let body = json!({"name": name, "service": service, "severity": severity}).to_string();
    let response = server
        .post_json("/api/v1/alerts/webhook", Some(token), &[], body)
        .await;
    assert_eq!(response.status(), 202);
}

async fn the_seeds_3am_scenario(backend: Backend) {
    let server = with_demo_topology(backend).await;
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
    let server = with_demo_topology(backend).await;
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
